"""Shared set-up for the flow tests: a demo dataset, a workspace, and launcher settings for this engine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tasks.job import preflight as job  # the module: the package exports no name of a submodule
from tasks.job.demo import generate_demo_dataset
from tasks.job.workspace import Workspace, stage_input
from tasks.storage import StorageAccess
from tests.launch.harness import host_memlock_limit

REPO = Path(__file__).resolve().parents[2]
TRAIN_SPEC = REPO / "specs" / "demo_train_resnet18.txt"
CONVERT_SPEC = REPO / "specs" / "demo_tfrecords.txt"
DATA_REF = "/workspace/tao-experiments/data/shapes"
TFR_REF = "/workspace/tao-experiments/data/tfrecords/shapes_trainval"
MODEL_REF = "/workspace/tao-experiments/pretrained/resnet18"


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory) -> Path:
    """The generated demo dataset (64 images) plus a base model file, built once per session."""
    root = tmp_path_factory.mktemp("demo")
    generate_demo_dataset(root / "data" / "shapes", count=64)
    model = root / "pretrained" / "resnet18" / "resnet18.hdf5"
    model.parent.mkdir(parents=True)
    model.write_bytes(b"\x89HDF\r\n\x1a\n stand-in pretrained weights")
    return root


@pytest.fixture
def engine_env(tmp_path, monkeypatch, standin_image):
    """Launcher settings this engine needs (no network, memlock capped), as a user would give them:
    a .tao_mounts.json; plus a fresh TAOFLOW_HOME. Returns a function to add stand-in env vars."""
    monkeypatch.setenv("TAOFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TAOFLOW_DOCKER_NETWORK", "none")
    mounts = tmp_path / "tao_mounts.json"

    def write(envs: dict[str, str] | None = None) -> str:
        mounts.write_text(json.dumps({
            "Mounts": [],
            "Envs": [{"variable": k, "value": v} for k, v in (envs or {}).items()],
            "DockerOptions": {"ulimits": {"memlock": host_memlock_limit(), "stack": 67108864}},
        }))
        monkeypatch.setenv("LAUNCHER_MOUNTS", str(mounts))
        return standin_image

    write()
    return write


def request_fields(data_root: Path | str, *, tfrecords: str, output: str, image: str, **extra) -> dict:
    """A TrainRequest mapping over the demo layout; `data_root` may be a local dir or a blob URL prefix."""
    join = (lambda *p: "/".join([str(data_root).rstrip("/"), *p])) if "://" in str(data_root) else (
        lambda *p: str(Path(data_root, *p)))
    fields = {
        "model_app_name": "shapes",
        "num_epochs": 3,
        "spec": str(TRAIN_SPEC),
        "dataset_convert_spec": str(CONVERT_SPEC),
        "training_data": {"location": join("data", "shapes"), "spec_reference": DATA_REF},
        "training_tfrecords": {"location": tfrecords, "spec_reference": TFR_REF},
        "base_model": {"location": join("pretrained", "resnet18"), "spec_reference": MODEL_REF},
        "output": output,
        "model_subfolder": "run-1",
        "model_name": "shapes_detector",
        "image": image,
        "docker_gpus": "none",
    }
    fields.update(extra)
    return fields


def plan_preflight(request):
    """Pre-flight exactly as `taoflow plan` runs it (no server, no engine): (conversion reason, the
    spec as prepared, the dataset report; None when a conversion would run first)."""
    workspace, access = Workspace.default(), StorageAccess(credentials=request.storage_credentials)
    staged = {n: stage_input(n, loc, workspace, access) for n, loc in job.input_locations(request).items()}
    prepared = job.prepare_spec(request, staged)
    reason = job.conversion_reason(request, staged)
    return reason, prepared, None if reason else job.validate_inputs(request, prepared, staged)
