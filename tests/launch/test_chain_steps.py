"""The chain's leaves, end to end on the stand-ins (in their images through dockerd, and as processes):
train -> prune -> the derived retrain spec -> retrain -> evaluate both -> the gates -> export -> TAO Deploy's
engine, each step run and judged by its own function, each artifact described for the card. The flow
wiring is not here (flows/ composes these); this shows the pieces fit and the stand-in's knobs move the
gates as the flow tests will need them to."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tasks.job.chain_gates import choose_candidate, pruning_gate
from tasks.job.chain_policy import ChainPolicy
from tasks.launch import (
    DockerLauncher,
    ProcessLauncher,
    artifact_facts,
    build_plan,
    evaluate_command,
    export_command,
    gen_trt_engine_command,
    prune_command,
    run_evaluation,
    run_export,
    run_gen_trt_engine,
    run_prune,
    run_training,
    train_command,
)
from tasks.launch.chain_commands import Int8Calibration
from tasks.launch.slots import SPEC_FILE_NAME, Slot, container_path, container_spec_file
from tasks.spec import parse_spec, retrain_spec
from tests.launch.harness import FAST_STOP, host_memlock_limit
from tests.standin.image import standin_deploy_executable

CLASSES = ("car", "cyclist", "pedestrian")
#: What export's labels.txt comes from (DetectNetExporter.get_class_labels): the harness's spec has no such block.
COST_FUNCTION = "cost_function_config {\n" + "".join(
    f'  target_classes {{\n    name: "{c}"\n    class_weight: 1.0\n  }}\n' for c in CLASSES) + "}\n"
R, BASE, SPEC = container_path(Slot.RESULTS), container_path(Slot.BASE_MODEL), container_spec_file()


def step(harness, command, slots: dict, *, image: str | None = None, env: dict | None = None):
    for path in slots.values():
        path.mkdir(parents=True, exist_ok=True)
    plan = build_plan(command, slots=slots, run_id=uuid.uuid4().hex,
                      image=image or harness.image or "unused-by-the-process-launcher", docker_gpus="none",
                      user=harness.user, env=env, network_mode="none")
    return plan.with_options(ulimits=(("memlock", host_memlock_limit()), ("stack", 67108864)))


def deploy_launcher(harness, request):
    if harness.kind == "process":
        return ProcessLauncher(executable=str(standin_deploy_executable()), policy=FAST_STOP), None
    image = request.getfixturevalue("standin_deploy_image")
    return DockerLauncher(client=harness.docker_client, policy=FAST_STOP), image


def evaluate(harness, root: Path, spec_dir: Path, weights: Path, name: str, env: dict | None = None):
    command = evaluate_command(spec=SPEC, model=f"{container_path(Slot.EVALUATED_MODEL)}/{weights.name}",
                               results_dir=R)
    plan = step(harness, command, {Slot.SPEC: spec_dir, Slot.EVALUATED_MODEL: weights.parent,
                                   Slot.RESULTS: root / f"evaluate-{name}"}, env=env)
    return run_evaluation(plan, harness.launcher).mean_average_precision


@pytest.mark.parametrize("ap_drop", ["0.5", "5"])
def test_the_chain_from_a_trained_model_to_an_engine(harness, request, ap_drop):
    root, policy = harness.root, ChainPolicy(prune={"enabled": True, "threshold": 0.01})
    knobs = {"TAO_STANDIN_PRUNED_AP_DROP": ap_drop}
    plan = harness.plan(epochs=3, name="detector", validation_period=1, classes=CLASSES)
    train_spec = root / "specs" / SPEC_FILE_NAME
    train_spec.write_text(train_spec.read_text() + COST_FUNCTION)
    trained = run_training(plan, harness.launcher)

    pruned = run_prune(step(harness, prune_command(model=f"{BASE}/detector.hdf5", output=f"{R}/pruned.hdf5",
                                                   results_dir=R, options=policy.prune.options()),
                            {Slot.BASE_MODEL: trained.model_path.parent, Slot.RESULTS: root / "prune"}),
                       harness.launcher)
    assert pruning_gate(policy, pruned.pruning_ratio).passed and pruned.model_path.parent == root / "prune"

    retrain_dir = root / "retrain-spec"
    retrain_dir.mkdir()
    derived = retrain_spec(parse_spec(train_spec.read_text(), file=str(train_spec)), f"{BASE}/pruned.hdf5")
    (retrain_dir / SPEC_FILE_NAME).write_text(derived.text)
    retrained = run_training(step(harness, train_command(model_name="detector", num_epochs=3),
                                  {Slot.SPEC: retrain_dir, Slot.BASE_MODEL: root / "prune",
                                   Slot.RESULTS: root / "retrain"}), harness.launcher)
    assert "pruned" in retrained.model_path.read_text() and retrained.results_dir == root / "retrain"

    unpruned_map = evaluate(harness, root, root / "specs", trained.model_path, "unpruned", knobs)
    pruned_map = evaluate(harness, root, retrain_dir, retrained.model_path, "retrained", knobs)
    choice = choose_candidate(policy, unpruned_map, pruned_map)
    assert choice.map_drop == pytest.approx(float(ap_drop))
    assert choice.candidate == ("pruned" if float(ap_drop) <= policy.max_map_drop_after_prune else "unpruned")
    candidate = retrained.model_path if choice.candidate == "pruned" else trained.model_path

    exported = run_export(step(harness, export_command(
        model=f"{BASE}/{candidate.name}", output=f"{R}/detector.onnx", spec=SPEC, results_dir=R),
        {Slot.SPEC: retrain_dir, Slot.BASE_MODEL: candidate.parent, Slot.RESULTS: root / "export"}), harness.launcher)
    assert exported.labels.read_text().split() == list(CLASSES)
    assert f"num-detected-classes={len(CLASSES)}" in exported.nvinfer_config.read_text()

    launcher, image = deploy_launcher(harness, request)
    calibration = root / "calibration"
    calibration.mkdir()
    for i in range(8):
        (calibration / f"{i:04d}.jpg").write_bytes(b"\xff\xd8 stand-in image")
    engine = run_gen_trt_engine(step(harness, gen_trt_engine_command(
        model=f"{BASE}/detector.onnx", spec=SPEC, results_dir=R, engine_file=f"{R}/detector.engine",
        data_type="int8", batch_sizes=policy.engine.batch_sizes(),
        calibration=Int8Calibration(f"{R}/calibration.bin", 10, 4, container_path(Slot.EVALUATION_DATA))),
        {Slot.SPEC: retrain_dir, Slot.BASE_MODEL: root / "export", Slot.EVALUATION_DATA: calibration,
         Slot.RESULTS: root / "engine"}, image=image), launcher)
    assert engine.data_type == "int8" and engine.cal_cache.name == "calibration.bin"
    assert engine.calibration_images == 8 and "not the 40 asked for" in engine.warnings[0]

    card = {path.name: artifact_facts(path).sha256 for path in (candidate, exported.onnx, engine.engine)}
    assert len(set(card.values())) == 3
