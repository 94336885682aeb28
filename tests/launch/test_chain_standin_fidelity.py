"""The stand-ins of `prune`, `export` (TAO's image) and `gen_trt_engine` (TAO Deploy's image) against the
recorded endings: for every scenario of tao-traces/prune, tao-traces/export and deploy_traces/gen_trt_engine
the stand-in, in its image through dockerd and as a host process, runs the recorded command (its paths
mapped onto the job's folders) and must leave the same status lines, change the same files, end its
console the same way and exit with the same code. A double that drifts from NVIDIA fails here."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from tasks.launch import DockerLauncher, ProcessLauncher, build_plan
from tasks.launch.command import Command
from tasks.launch.slots import Slot, container_path
from tests.launch.harness import FAST_STOP, Recorder, host_memlock_limit
from tests.spec._specs import spec_text
from tests.standin.chain_traces import (
    ENGINE_SCENARIOS,
    EXPORT_SCENARIOS,
    PRUNE_SCENARIOS,
    changed_files,
    load_step_trace,
    recorded_contents,
    snapshot,
    step_differences,
)
from tests.standin.image import standin_deploy_executable, standin_executable

RETRAIN_SPEC = "tao_tutorials_5.5__detectnet_v2_retrain_resnet18_kitti.txt"
TRAINING_IMAGES = "/workspace/tao-experiments/data/training"
#: What the recordings' -m held, per sub-task, in the stand-ins' terms.
MODEL_TEXT = {"prune": "standin model after epoch 3\n",
              "export": "standin model after epoch 3 pruned ratio=0.28675465541756007\n",
              "gen_trt_engine": "standin ONNX of the retrained model\ninfer-dims=3;384;1248\n"}
#: Images in --cal_image_dir as the recordings had them (deploy_traces/recording/record.py).
CALIBRATION_IMAGES = {"cal_images_fewer_than_a_batch": 3, "cal_images_fewer_than_asked": 8,
                      "cal_data_file_finds_no_images": 40}
KNOBS = {"onnx_parse_error": {"TAO_STANDIN_TRT_PARSE_FAIL": "1"}, "build_failed": {"TAO_STANDIN_TRT_BUILD_FAIL": "1"},
         "build_failed_py310": {"TAO_STANDIN_TRT_BUILD_FAIL": "1", "TAO_STANDIN_DEPLOY_PYTHON": "3.10"}}
CASES = ([("prune", s) for s in PRUNE_SCENARIOS] + [("export", s) for s in EXPORT_SCENARIOS]
         + [("gen_trt_engine", s) for s in ENGINE_SCENARIOS])


@pytest.fixture(params=["docker", "process"])
def backend(request):
    return request.param


def launcher_for(backend: str, subtask: str, request):
    if backend == "process":
        executable = standin_deploy_executable() if subtask == "gen_trt_engine" else standin_executable()
        return ProcessLauncher(executable=str(executable), policy=FAST_STOP), None, None
    image = request.getfixturevalue("standin_deploy_image" if subtask == "gen_trt_engine" else "standin_image")
    return DockerLauncher(client=request.getfixturevalue("docker_client"), policy=FAST_STOP), image, "1234:1234"


def lay_out(trace, root: Path, backend: str, scenario: str) -> tuple[list[str], dict[Slot, Path]]:
    """The recorded command on the job's folders: each recorded folder becomes a slot, the inputs in place."""
    results = trace.results_dir
    folders = {results: Slot.RESULTS}
    for flag, slot in (("-m", Slot.BASE_MODEL), ("-e", Slot.SPEC), ("--cal_image_dir", Slot.EVALUATION_DATA)):
        value = trace.option(flag)
        if value:
            folder = value if flag == "--cal_image_dir" else value.rsplit("/", 1)[0]
            folders.setdefault(folder, slot)
    folders[TRAINING_IMAGES] = Slot.TRAINING_DATA
    slots = {slot: root / slot.value for slot in folders.values()}
    for path in slots.values():
        path.mkdir(parents=True, exist_ok=True)

    def container(path: str) -> str:
        for folder in sorted(folders, key=len, reverse=True):
            if path == folder or path.startswith(folder + "/"):
                return container_path(folders[folder]) + path[len(folder):]
        return path

    def host(path: str) -> Path:
        for folder in sorted(folders, key=len, reverse=True):
            if path == folder or path.startswith(folder + "/"):
                return slots[folders[folder]] / path[len(folder):].lstrip("/")
        raise AssertionError(path)

    host(trace.option("-m")).write_text(MODEL_TEXT[trace.subtask])
    spec = trace.option("-e")
    if spec and not spec.endswith("/missing.txt"):
        images = container(TRAINING_IMAGES) if backend == "docker" else str(slots[Slot.TRAINING_DATA])
        host(spec).write_text(spec_text(RETRAIN_SPEC).replace(TRAINING_IMAGES, images))
    if trace.subtask == "gen_trt_engine":
        (slots[Slot.TRAINING_DATA] / "image_2").mkdir(exist_ok=True)
        for i in range(40):
            (slots[Slot.TRAINING_DATA] / "image_2" / f"{i:06d}.png").write_bytes(b"\x89PNG stand-in image")
        for i in range(CALIBRATION_IMAGES.get(scenario, 0)):
            (slots[Slot.EVALUATION_DATA] / f"{i:06d}.png").write_bytes(b"\x89PNG stand-in image")
    return ["detectnet_v2", *[container(a) if a.startswith("/") else a for a in trace.argv]], slots


@pytest.mark.parametrize(("subtask", "scenario"), CASES)
def test_the_standin_ends_like_the_recording(request, backend, workdir, subtask, scenario):
    trace = load_step_trace(subtask, scenario)
    launcher, image, user = launcher_for(backend, subtask, request)
    argv, slots = lay_out(trace, workdir, backend, scenario)
    command = Command(subtask=subtask, argv=tuple(argv), results_dir=container_path(Slot.RESULTS))
    plan = build_plan(command, slots=slots, run_id=uuid.uuid4().hex, image=image or "unused-by-the-process-launcher",
                      docker_gpus="none", user=user, env=KNOBS.get(scenario, {}), network_mode="none")
    plan = plan.with_options(ulimits=(("memlock", host_memlock_limit()), ("stack", 67108864)))
    results = slots[Slot.RESULTS]
    for _ in range(trace.runs):
        before = snapshot(results)
        seen = Recorder()
        outcome = launcher.run(plan, seen.observer())
    records = [json.loads(line) for line in (results / "status.json").read_text().splitlines()]
    seen_argv = list(command.argv) if backend == "docker" else launcher.argv(plan)
    problems = step_differences(trace, records, changed_files(before, snapshot(results)), seen.lines,
                                outcome.exit_code, seen_argv)
    assert problems == [], "\n".join(problems)
    for name, data in recorded_contents(trace).items():
        assert (results / name).read_bytes() == data, f"{name} differs from NVIDIA's"
