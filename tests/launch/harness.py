"""A job on either launcher, against the stand-in TAO (image or script): the behaviour tests'
shared set-up, so both backends face the very same cases."""

from __future__ import annotations

import os
import resource
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tasks.job.plans import plan_training
from tasks.job.preflight import prepare_spec
from tasks.job.request import TrainRequest
from tasks.job.workspace import Workspace, stage_input
from tasks.launch import (
    DockerLauncher,
    JobObserver,
    ProcessLauncher,
    StopPolicy,
    build_plan,
    train_command,
)
from tasks.launch.slots import SPEC_FILE_NAME, Slot
from tests.standin.image import standin_executable

DEMO_SPEC = Path(__file__).resolve().parents[2] / "specs" / "demo_train_resnet18.txt"

def host_memlock_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    return -1 if hard == resource.RLIM_INFINITY else hard


FAST_STOP = StopPolicy(graceful_seconds=8, terminate_seconds=2, tick_seconds=0.1)


def spec_text(epochs: int = 4, classes: tuple[str, ...] = ("car", "pedestrian"), *, checkpoint_interval: int = 1,
              validation_period: int = 2) -> str:
    mapping = "".join(
        f'  target_class_mapping {{\n    key: "{c.title()}"\n    value: "{c}"\n  }}\n' for c in classes
    )
    return (
        f"dataset_config {{\n{mapping}}}\n"
        f"training_config {{\n  num_epochs: {epochs}\n  checkpoint_interval: {checkpoint_interval}\n}}\n"
        f"evaluation_config {{\n  validation_period_during_training: {validation_period}\n"
        "  first_validation_epoch: 1\n}\n"
    )


@dataclass
class Recorder:
    lines: list[str] = field(default_factory=list)
    epochs: list = field(default_factory=list)
    validations: list = field(default_factory=list)

    def observer(self, **overrides: Any) -> JobObserver:
        callbacks = dict(on_line=self.lines.append, on_epoch=self.epochs.append, on_validation=self.validations.append)
        return JobObserver(**(callbacks | overrides))


@dataclass
class Harness:
    kind: str
    launcher: Any
    root: Path
    image: str | None = None
    user: str | None = None
    expected_uid: int = field(default_factory=os.getuid)
    docker_client: Any = None

    def folders(self, epochs: int = 4, **spec: int) -> dict[Slot, Path]:
        slots = {Slot.SPEC: self.root / "specs", Slot.TRAINING_DATA: self.root / "data", Slot.RESULTS: self.root / "results"}
        for slot, path in slots.items():
            if slot is not Slot.RESULTS:
                path.mkdir(parents=True, exist_ok=True)
        (slots[Slot.SPEC] / SPEC_FILE_NAME).write_text(spec_text(epochs, **spec))
        return slots

    def plan(self, **kw):
        plan = self._plan(**kw)
        # This engine may not raise RLIMIT_MEMLOCK (no CAP_SYS_RESOURCE): keep the host's limit.
        return plan.with_options(ulimits=(("memlock", host_memlock_limit()), ("stack", 67108864)))

    def _plan(self, *, epochs: int = 4, run_id: str | None = None, env: dict | None = None, key: str | None = None,
             docker_gpus: Any = "none", log_file: str | None = None, resume: bool = False, name: str = "detector",
             gpu_index: tuple[int, ...] = (), **spec: int):
        return build_plan(
            train_command(model_name=name, num_epochs=epochs, key=key, log_file=log_file,
                          num_gpus=max(len(gpu_index), 1), gpu_index=gpu_index),
            slots=self.folders(epochs, **spec),
            run_id=run_id or uuid.uuid4().hex,
            image=self.image or "unused-by-the-process-launcher",
            docker_gpus=docker_gpus,
            user=self.user,
            env=env,
            network_mode="none",
            resume=resume,
        )


def docker_harness(root: Path, client, image: str) -> Harness:
    return Harness(
        kind="docker",
        launcher=DockerLauncher(client=client, policy=FAST_STOP),
        root=root,
        image=image,
        user="1234:1234",
        expected_uid=1234,
        docker_client=client,
    )


def process_harness(root: Path) -> Harness:
    return Harness(kind="process", launcher=ProcessLauncher(executable=str(standin_executable()), policy=FAST_STOP), root=root)


def plan_from_request(tmp_path: Path, *, key: str | None = None, **fields: Any):
    """`plan_training` as the flow calls it, on the demo spec and empty local inputs."""
    request, staged = staged_request(tmp_path, **fields)
    return plan_training(request, prepare_spec(request, staged), staged, tmp_path / "run", "unit-run", key=key)


def staged_request(tmp_path: Path, **fields: Any):
    """A request on the demo spec and empty local inputs, and its inputs staged as the flow stages them."""
    folders = {name: tmp_path / name for name in ("data", "tfrecords", "model")}
    for folder in folders.values():
        folder.mkdir(exist_ok=True)
    request = TrainRequest(**{
        "model_app_name": "unit", "num_epochs": 2, "spec": str(DEMO_SPEC), "output": str(tmp_path / "out"),
        "model_subfolder": "r1",
        "training_data": {"location": str(folders["data"]), "spec_reference": "/workspace/tao-experiments/data/shapes"},
        "training_tfrecords": {"location": str(folders["tfrecords"]),
                               "spec_reference": "/workspace/tao-experiments/data/tfrecords/shapes_trainval"},
        "base_model": {"location": str(folders["model"]), "spec_reference": "/workspace/tao-experiments/pretrained/resnet18"},
        **fields,
    })
    workspace = Workspace(tmp_path / "home")
    locations = {"spec": request.spec, **{n: b.location for n, b in request.bindings().items()}}
    return request, {name: stage_input(name, location, workspace) for name, location in locations.items()}
