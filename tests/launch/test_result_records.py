"""The step results as records (`tasks/launch/result_records.py`): real results of the stand-in chain
(train, prune, export, gen_trt_engine, evaluate on both launchers) come back from JSON as they were,
a record read back refuses what would climb out of its folder or is no finite number, and a cached
training through `run_step` starts no second job."""

from __future__ import annotations

import json
import math
import shutil
import uuid
from pathlib import Path

import pytest

from tasks.job.step_cache import StepFolder, run_step, step_key
from tasks.launch import (
    EngineResult,
    EpochEvent,
    EvaluationResult,
    PruneResult,
    RecordError,
    TrainResult,
    ValidationEvent,
    artifacts_of,
    from_record,
    to_record,
)
from tasks.launch.chain_commands import Int8Calibration, export_command, gen_trt_engine_command, prune_command
from tasks.launch.command import evaluate_command, train_command
from tasks.launch.execute import run_evaluation, run_export, run_gen_trt_engine, run_prune, run_training
from tasks.launch.slots import SPEC_FILE_NAME, Slot, container_path
from tests.launch.harness import docker_harness, process_harness
from tests.launch.test_chain_steps import BASE, CLASSES, COST_FUNCTION, SPEC, R, deploy_launcher, step


@pytest.fixture(scope="module", params=["docker", "process"])
def chain(request, tmp_path_factory) -> dict[str, tuple[object, Path]]:
    """Every kind of result, each with its results folder, from one run of the stand-in chain."""
    root = tmp_path_factory.mktemp(f"records-{request.param}")
    harness = (docker_harness(root, request.getfixturevalue("docker_client"), request.getfixturevalue("standin_image"))
               if request.param == "docker" else process_harness(root))
    plan = harness.plan(epochs=3, name="detector", validation_period=1, classes=CLASSES)
    spec = root / "specs" / SPEC_FILE_NAME
    spec.write_text(spec.read_text() + COST_FUNCTION)
    trained = run_training(plan, harness.launcher)
    pruned = run_prune(step(harness, prune_command(model=f"{BASE}/detector.hdf5", output=f"{R}/pruned.hdf5",
                                                   results_dir=R),
                            {Slot.BASE_MODEL: trained.model_path.parent, Slot.RESULTS: root / "prune"}),
                       harness.launcher)
    calibration = root / "calibration"
    calibration.mkdir()
    for i in range(8):
        (calibration / f"{i:04d}.jpg").write_bytes(b"\xff\xd8 stand-in image")
    images = container_path(Slot.EVALUATION_DATA)
    exported = run_export(step(harness, export_command(
        model=f"{BASE}/detector.hdf5", output=f"{R}/onnx/detector.onnx", spec=SPEC, results_dir=R, data_type="int8",
        engine_file=f"{R}/onnx/detector.engine",
        calibration=Int8Calibration(f"{R}/onnx/calibration.bin", 2, 2, images)),
        {Slot.SPEC: root / "specs", Slot.BASE_MODEL: trained.model_path.parent, Slot.EVALUATION_DATA: calibration,
         Slot.RESULTS: root / "export"}), harness.launcher)
    launcher, image = deploy_launcher(harness, request)
    engine = run_gen_trt_engine(step(harness, gen_trt_engine_command(
        model=f"{BASE}/onnx/detector.onnx", spec=SPEC, results_dir=R, engine_file=f"{R}/detector.engine",
        data_type="int8", calibration=Int8Calibration(f"{R}/calibration.bin", 10, 4, images)),
        {Slot.SPEC: root / "specs", Slot.BASE_MODEL: root / "export", Slot.EVALUATION_DATA: calibration,
         Slot.RESULTS: root / "engine"}, image=image), launcher)
    evaluated = run_evaluation(step(harness, evaluate_command(
        spec=SPEC, model=f"{container_path(Slot.EVALUATED_MODEL)}/detector.hdf5", results_dir=R),
        {Slot.SPEC: root / "specs", Slot.EVALUATED_MODEL: trained.model_path.parent,
         Slot.RESULTS: root / "evaluate"}), harness.launcher)
    return {"train": (trained, root / "results"), "prune": (pruned, root / "prune"),
            "export": (exported, root / "export"), "engine": (engine, root / "engine"),
            "evaluate": (evaluated, root / "evaluate")}


def paths_in(record) -> list[str]:
    """Every string of a record that names a file."""
    if isinstance(record, dict):
        return [p for value in record.values() for p in paths_in(value)]
    if isinstance(record, list):
        return [p for value in record for p in paths_in(value)]
    return [record] if isinstance(record, str) and ("/" in record or "." in record) else []


@pytest.mark.parametrize("kind", ["train", "prune", "export", "engine", "evaluate"])
def test_a_real_result_comes_back_from_its_record_as_it_was(chain, kind, tmp_path):
    result, results = chain[kind]
    text = json.dumps(to_record(result, results), allow_nan=False)
    assert from_record(type(result), json.loads(text), results) == result
    assert str(results.parent) not in text  # paths relative to the results folder

    moved = tmp_path / "elsewhere"
    shutil.copytree(results, moved, symlinks=True)
    there = from_record(type(result), json.loads(text), moved)
    assert {name: path.relative_to(moved) for name, path in artifacts_of(there).items()} == {
        name: path.relative_to(results) for name, path in artifacts_of(result).items()}


def test_the_chain_filled_every_field_the_records_carry(chain):
    """The round trip above is worth something only if the results are rich: events, optional files, warnings."""
    trained, exported, engine, evaluated = (chain[k][0] for k in ("train", "export", "engine", "evaluate"))
    assert len(trained.epochs) == 3 and len(trained.validations) == 3 and trained.per_class_ap
    assert None not in (exported.labels, exported.nvinfer_config, exported.engine, exported.cal_cache)
    assert engine.cal_cache is not None and engine.calibration_images == 8 and engine.warnings
    assert evaluated.average_precision and evaluated.console_table


def test_the_artifacts_are_the_files_later_steps_use(chain):
    names = {kind: sorted(artifacts_of(result)) for kind, (result, _) in chain.items()}
    assert names == {"train": ["model_path"], "prune": ["model_path"],
                     "export": ["cal_cache", "engine", "labels", "nvinfer_config", "onnx"],
                     "engine": ["cal_cache", "engine"], "evaluate": []}
    for result, results in chain.values():
        for path in artifacts_of(result).values():
            assert path.is_file() and path.is_relative_to(results) and path.name != "status.json"


def test_the_results_folder_may_be_named_through_a_link(chain, tmp_path):
    """The mounts resolve the results folder (`MountPlan.from_slots`): a TAOFLOW_HOME behind a link still records."""
    result, results = chain["prune"]
    link = tmp_path / "home-link"
    link.symlink_to(results.resolve())
    assert from_record(PruneResult, to_record(result, link), link) == result


# --- hostile records ------------------------------------------------------------------------------


def a_training(results: Path) -> TrainResult:
    return TrainResult(results, results / "weights" / "detector.hdf5", 3, 1,
                       [EpochEvent(2, 3, 0.0012, 5e-05, "0:00:01"), EpochEvent(3, 3, None, None, None)],
                       [ValidationEvent(2, {"car": 70.5, "cyclist": 0.0}, 35.25, 0.0001), ValidationEvent(3)],
                       0, 12.5)


def _set(path: str, value):
    def change(record: dict) -> None:
        *parents, last = path.split(".")
        target = record["fields"]
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        if isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value
    change.__name__ = f"{path}={value!r}"
    return change


def _drop(name: str):
    def change(record: dict) -> None:
        del record["fields"][name]
    change.__name__ = f"without {name}"
    return change


@pytest.mark.parametrize("change, where, what", [
    (_set("model_path", "../../etc/passwd"), "TrainResult.model_path", "climbs out"),
    (_set("model_path", "/etc/passwd"), "TrainResult.model_path", "climbs out"),
    (_set("results_dir", ".."), "TrainResult.results_dir", "climbs out"),
    (_set("model_path", ""), "TrainResult.model_path", "is not a path"),
    (_set("validations.0.average_precision", {"car": math.nan}), "average_precision['car']", "not a finite"),
    (_set("validations.0.mean_average_precision", math.inf), "mean_average_precision", "not a finite"),
    (_set("duration_s", -math.inf), "TrainResult.duration_s", "not a finite"),
    (_set("num_epochs", True), "TrainResult.num_epochs", "expected int, found bool"),
    (_set("num_epochs", 3.0), "TrainResult.num_epochs", "expected int, found float"),
    (_set("duration_s", "12.5"), "TrainResult.duration_s", "expected int/float, found str"),
    (_set("epochs", {"0": {}}), "TrainResult.epochs", "expected list"),
    (_set("epochs.0", [2, 3]), "TrainResult.epochs[0]", "expected dict"),
    (_drop("start_epoch"), "TrainResult", "lacks field(s) start_epoch"),
    (_set("owner", "someone"), "TrainResult", "has unknown field(s) owner"),
])
def test_a_record_read_back_refuses_what_taoflow_never_writes(tmp_path, change, where, what):
    record = json.loads(json.dumps(to_record(a_training(tmp_path), tmp_path)))
    assert from_record(TrainResult, record, tmp_path) == a_training(tmp_path)
    change(record)
    with pytest.raises(RecordError, match="step record") as refused:
        from_record(TrainResult, json.loads(json.dumps(record)), tmp_path)
    assert where in str(refused.value) and what in str(refused.value)


@pytest.mark.parametrize("record", [
    [], {"kind": "TrainResult"}, {"kind": ["TrainResult"], "fields": {}}, {"kind": "PruneResult", "fields": {}},
    {"kind": "TrainResult", "fields": {}, "extra": 1},
])
def test_a_record_of_another_shape_or_kind_is_refused(tmp_path, record):
    with pytest.raises(RecordError, match="step record TrainResult"):
        from_record(TrainResult, record, tmp_path)


def test_a_result_with_a_file_outside_its_folder_or_a_number_not_finite_is_not_recorded(tmp_path):
    engine = EngineResult(tmp_path / "engine" / "detector.engine", "int8", tmp_path / "export" / "calibration.bin")
    with pytest.raises(RecordError, match=r"EngineResult.cal_cache: .* is not inside the results folder"):
        to_record(engine, tmp_path / "engine")
    evaluation = EvaluationResult(tmp_path, "/m/detector.hdf5", {"car": math.inf}, 70.0)
    with pytest.raises(RecordError, match=r"EvaluationResult.average_precision\['car'\]: inf is not a finite"):
        to_record(evaluation, tmp_path)
    with pytest.raises(TypeError):
        to_record("a string", tmp_path)


# --- a cached training starts no second job ---------------------------------------------------------


def test_a_second_run_with_the_same_inputs_reuses_the_training(harness, workdir):
    """Both launchers: the stand-in trains once; a new run id with the same inputs starts nothing and gets
    the very `TrainResult`; after the model was changed behind its back, the step trains again."""
    slots = harness.folders(epochs=2)
    spec_text = (slots[Slot.SPEC] / SPEC_FILE_NAME).read_text()
    starts: list[str] = []

    def plan_for_a_new_run(folder: StepFolder):
        plan = step(harness, train_command(model_name="detector", num_epochs=2), slots | {Slot.RESULTS: folder.results})
        return plan.with_options(run_id=uuid.uuid4().hex, resume=True)

    def key() -> str:
        plan = plan_for_a_new_run(StepFolder(workdir, "train", "0" * 64))
        return step_key("train", image=plan.image, argv=plan.command.display_argv(), env=dict(plan.env),
                        texts={"spec": spec_text}, inputs={"training_data": "sha256:empty"})

    assert key() == key()  # a new run id is no ingredient
    folder = StepFolder.under(workdir / "home", "train", key())

    def train() -> TrainResult:
        plan = plan_for_a_new_run(folder)
        starts.append(plan.run_id)
        return run_training(plan, harness.launcher)

    first, reused = run_step(folder, TrainResult, train)
    again, reused_again = run_step(folder, TrainResult, train)
    assert (reused, reused_again, len(starts)) == (False, True, 1)
    assert again == first and first.model_path.is_relative_to(folder.results.resolve())

    first.model_path.write_text("changed behind taoflow's back")
    retrained, reused = run_step(folder, TrainResult, train)
    assert (reused, len(starts)) == (False, 2) and retrained.model_path == first.model_path
