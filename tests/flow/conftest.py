"""Shared set-up for the flow tests: the demo request's fields and a workspace (the demo dataset and the
launcher settings are fixtures of tests/fixtures/job_inputs.py)."""

from __future__ import annotations

from pathlib import Path

from tasks.job import preflight as job  # the module: the package exports no name of a submodule
from tasks.job.workspace import Workspace, stage_input
from tasks.storage import StorageAccess
from tests.fixtures.job_inputs import REPO, TRAIN_SPEC

CONVERT_SPEC = REPO / "specs" / "demo_tfrecords.txt"
DATA_REF = "/workspace/tao-experiments/data/shapes"
TFR_REF = "/workspace/tao-experiments/data/tfrecords/shapes_trainval"
MODEL_REF = "/workspace/tao-experiments/pretrained/resnet18"


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
