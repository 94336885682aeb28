"""Planning `detectnet_v2 evaluate` from a request: the held-out set (`evaluation_data`) rebased into
evaluate's spec only, evaluate's own results folder, the model mounted read-only, the key only when
TAO needs it, one GPU. Engine-free: these are the plans the launchers carry out."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.errors import ConfigError, SpecError
from tasks.job.plans import plan_evaluation, plan_training
from tasks.job.preflight import evaluation_spec, prepare_spec
from tasks.job.request import TrainRequest
from tasks.job.workspace import Workspace, stage_input
from tasks.launch import DockerLauncher, GpuDemand
from tasks.launch.slots import Slot, container_path
from tests.launch.harness import DEMO_SPEC

HELD_OUT_REF = "/workspace/tao-experiments/data/heldout"
HELD_OUT_SPEC = DEMO_SPEC.read_text().replace(
    "  validation_fold: 0\n",
    "  validation_data_source {\n"
    f'    tfrecords_path: "{HELD_OUT_REF}/tfrecords/*"\n'
    f'    image_directory_path: "{HELD_OUT_REF}"\n'
    "  }\n",
)


def setup(tmp_path: Path, *, spec_text: str = HELD_OUT_SPEC, **fields):
    """A request over empty local inputs, staged as the flow stages them."""
    spec = tmp_path / "spec.txt"
    spec.write_text(spec_text)
    for name in ("data", "tfrecords", "model", "validation", "heldout"):
        (tmp_path / name).mkdir(exist_ok=True)
    base = {
        "model_app_name": "unit", "num_epochs": 2, "spec": str(spec), "output": str(tmp_path / "out"),
        "model_subfolder": "r1",
        "training_data": {"location": str(tmp_path / "data"), "spec_reference": "/workspace/tao-experiments/data/shapes"},
        "training_tfrecords": {"location": str(tmp_path / "tfrecords"),
                               "spec_reference": "/workspace/tao-experiments/data/tfrecords/shapes_trainval"},
        "base_model": {"location": str(tmp_path / "model"), "spec_reference": "/workspace/tao-experiments/pretrained/resnet18"},
    }
    if spec_text is HELD_OUT_SPEC:
        base["validation_data"] = {"location": str(tmp_path / "validation"), "spec_reference": HELD_OUT_REF}
    request = TrainRequest(**(base | fields))
    workspace = Workspace(tmp_path / "home")
    locations = {"spec": request.spec, **{n: b.location for n, b in request.bindings().items()}}
    staged = {name: stage_input(name, location, workspace, None) for name, location in locations.items()}
    return request, staged


def model_file(tmp_path: Path, name: str = "detector.hdf5") -> Path:
    path = tmp_path / "run" / "results" / "weights" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("standin model after epoch 2\n")
    return path


def test_the_held_out_set_replaces_the_validation_data_for_evaluate_only(tmp_path):
    request, staged = setup(tmp_path, evaluation_data={"location": str(tmp_path / "heldout"), "spec_reference": HELD_OUT_REF})
    training = prepare_spec(request, staged)
    evaluating = evaluation_spec(request, staged, training)
    validation, held_out = container_path(Slot.VALIDATION_DATA), container_path(Slot.EVALUATION_DATA)
    assert training.facts.validation_image_directory_path == validation
    assert evaluating.facts.validation_image_directory_path == held_out
    assert evaluating.facts.validation_tfrecords_path == f"{held_out}/tfrecords/*"
    # Training never mounts the held-out set; evaluate mounts it read-only.
    train = plan_training(request, training, staged, tmp_path / "run", "run")
    assert all(m.target != held_out for m in train.mounts.mounts)
    plan = plan_evaluation(request, evaluating.text, staged, tmp_path / "run", "run", role="challenger",
                           model=model_file(tmp_path))
    mounts = {m.target: m for m in plan.mounts.mounts}
    assert mounts[held_out].source == str(tmp_path / "heldout") and mounts[held_out].read_only
    assert mounts[container_path(Slot.EVALUATED_MODEL)].read_only
    assert plan.command.argv == ("detectnet_v2", "evaluate", "-e", "/workspace/taoflow/specs/experiment_spec.txt",
                                 "-m", "/workspace/taoflow/evaluated_model/detector.hdf5", "-r", "/workspace/taoflow/results")
    written = (tmp_path / "run" / "evaluate" / "challenger" / "specs" / "experiment_spec.txt").read_text()
    assert f'image_directory_path: "{held_out}"' in written
    # Its own results folder: evaluate opens status.json with "w"; train's must survive it.
    assert plan.results_host_dir == tmp_path / "run" / "evaluate" / "challenger" / "results"
    assert plan.results_host_dir != train.results_host_dir
    assert plan.run_id == "run-evaluate-challenger" and "key:      not passed" in plan.render()


def test_in_the_tao_image_the_held_out_set_is_its_staged_path(tmp_path):
    request, staged = setup(tmp_path, launcher="process",
                            evaluation_data={"location": str(tmp_path / "heldout"), "spec_reference": HELD_OUT_REF})
    evaluating = evaluation_spec(request, staged, prepare_spec(request, staged))
    assert evaluating.facts.validation_image_directory_path == str(tmp_path / "heldout")


def test_without_evaluation_data_evaluate_reads_the_training_spec(tmp_path):
    request, staged = setup(tmp_path, spec_text=DEMO_SPEC.read_text())
    training = prepare_spec(request, staged)
    assert evaluation_spec(request, staged, training) is training
    assert training.facts.validation_fold == 0


def test_evaluation_data_needs_a_validation_data_source_to_replace(tmp_path):
    request, staged = setup(tmp_path, spec_text=DEMO_SPEC.read_text(),
                            evaluation_data={"location": str(tmp_path / "heldout"),
                                             "spec_reference": "/workspace/tao-experiments/data/shapes"})
    with pytest.raises(ConfigError) as caught:
        evaluation_spec(request, staged, prepare_spec(request, staged))
    assert "validation_fold" in caught.value.render() and "evaluation_data" in caught.value.render()
    request, staged = setup(tmp_path, evaluation_data={"location": str(tmp_path / "heldout"),
                                                       "spec_reference": "/nowhere/in/the/spec"})
    with pytest.raises(SpecError) as unmatched:
        evaluation_spec(request, staged, prepare_spec(request, staged))
    assert "unmatched-reference" in unmatched.value.render()


def test_the_key_goes_to_evaluate_only_for_an_encrypted_model(tmp_path):
    request, staged = setup(tmp_path)
    text = prepare_spec(request, staged).text
    tlt = model_file(tmp_path, "old_champion.tlt")
    with pytest.raises(ConfigError) as caught:
        plan_evaluation(request, text, staged, tmp_path / "run", "run", role="champion", model=tlt)
    assert "old_champion.tlt is encrypted" in caught.value.render()
    plan = plan_evaluation(request, text, staged, tmp_path / "run", "run", role="champion", model=tlt, key="s3cret-key")
    assert plan.command.argv[-2:] == ("-k", "s3cret-key") and "s3cret-key" not in plan.render()
    hdf5 = plan_evaluation(request, text, staged, tmp_path / "run", "run", role="champion", model=model_file(tmp_path),
                           key="s3cret-key")
    assert "-k" not in hdf5.command.argv


def test_evaluate_runs_on_the_first_requested_gpu(tmp_path):
    request, staged = setup(tmp_path, num_gpus=2, gpu_index=[2, 3], docker_gpus="all")
    plan = plan_evaluation(request, prepare_spec(request, staged).text, staged, tmp_path / "run", "run",
                           role="challenger", model=model_file(tmp_path))
    assert plan.gpus == GpuDemand(1, pinned=(2,))
    assert DockerLauncher().assign_gpus(plan, (2,)).device_requests == ({"device_ids": ["2"], "capabilities": [["gpu"]]},)
    assert plan.command.argv[-2:] == ("--gpu_index", "0") and "--gpus" not in plan.command.argv
