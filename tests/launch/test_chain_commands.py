"""The chain's command lines: argv lists with NVIDIA's flags, the key only where a model is encrypted and
never in the display form, and the traps of NVIDIA's code refused before any container starts — prune's
`-o` without `.hdf5`, an output another run left (export refuses it after loading the model, TAO Deploy
would reuse a calibration cache it did not make), gen_trt_engine without `--engine_file`."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tasks.errors import ConfigError, LaunchError
from tasks.launch import build_plan, run_export, run_prune
from tasks.launch.chain_commands import (
    BatchSizes,
    Int8Calibration,
    PruneOptions,
    export_command,
    gen_trt_engine_command,
    prepare_outputs,
    prune_command,
)
from tasks.launch.plan import RUN_LABEL
from tasks.launch.results import RUN_MARKER
from tasks.launch.slots import Slot, container_path
from tests.launch.harness import host_memlock_limit
from tests.spec._specs import spec_text

R = container_path(Slot.RESULTS)
M = container_path(Slot.BASE_MODEL)


def test_prune_passes_the_notebooks_knobs_explicitly():
    command = prune_command(model=f"{M}/model.hdf5", output=f"{R}/pruned.hdf5", results_dir=R,
                            options=PruneOptions(excluded_layers=("conv1",)), gpu_index=1)
    assert command.argv == ("detectnet_v2", "prune", "-m", f"{M}/model.hdf5", "-o", f"{R}/pruned.hdf5",
                            "--results_dir", R, "-pth", "5.2e-06", "-eq", "union", "-n", "max", "-pg", "8", "-nf",
                            "16", "-el", "conv1", "--gpu_index", "1")
    assert (command.artifact, command.outputs) == (f"{R}/pruned.hdf5", (f"{R}/pruned.hdf5",))


@pytest.mark.parametrize(("output", "where"), [
    (f"{R}/pruned.tlt", "prune -o"), (f"{R}/pruned", "prune -o"), (f"{M}/pruned.hdf5", "prune -o"),
    (f"{R}/my model.hdf5", "prune -o"), ("pruned.hdf5", "prune -o")])
def test_prune_outputs_tao_would_mishandle_are_refused(output, where):
    with pytest.raises(ConfigError) as caught:
        prune_command(model=f"{M}/model.hdf5", output=output, results_dir=R)
    assert caught.value.where == where and caught.value.fix


def test_prune_knobs_outside_taos_choices_are_refused():
    for options in (PruneOptions(equalization="mean"), PruneOptions(normalizer="l2"), PruneOptions(granularity=0)):
        with pytest.raises(ConfigError):
            prune_command(model=f"{M}/m.hdf5", output=f"{R}/p.hdf5", results_dir=R, options=options)


def test_the_key_goes_only_to_an_encrypted_model_and_is_masked():
    plain = prune_command(model=f"{M}/m.hdf5", output=f"{R}/p.hdf5", results_dir=R, key="s3cr3t-key-123")
    assert "-k" not in plain.argv and plain.secrets == ()
    tlt = prune_command(model=f"{M}/m.tlt", output=f"{R}/p.hdf5", results_dir=R, key="s3cr3t-key-123")
    assert tlt.argv[-2:] == ("-k", "s3cr3t-key-123") and "s3cr3t-key-123" not in " ".join(tlt.display_argv())
    # export would write the key into nvinfer_config.txt as tlt-model-key=
    exported = export_command(model=f"{M}/m.hdf5", output=f"{R}/m.onnx", spec="/s.txt", results_dir=R, key="k" * 12)
    assert "-k" not in exported.argv


def test_export_declares_every_file_it_writes():
    calibration = Int8Calibration(f"{R}/calibration.bin", batches=10, batch_size=4)
    command = export_command(model=f"{M}/m.hdf5", output=f"{R}/m.onnx", spec="/s.txt", results_dir=R, data_type="int8",
                             engine_file=f"{R}/m.trt", calibration=calibration)
    assert command.outputs == (f"{R}/m.onnx", f"{R}/labels.txt", f"{R}/nvinfer_config.txt", f"{R}/m.trt",
                               f"{R}/calibration.bin")
    assert command.argv[-10:] == ("--data_type", "int8", "--engine_file", f"{R}/m.trt", "--cal_cache_file",
                                  f"{R}/calibration.bin", "--batches", "10", "--batch_size", "4")


@pytest.mark.parametrize("changes", [
    {"output": f"{R}/m.etlt"},                              # TAO 5 writes ONNX only
    {"data_type": "int8"},                                  # calibrates only while building an engine
    {"data_type": "fp16"},                                  # no engine file: the data type does nothing
    {"data_type": "int8", "engine_file": f"{R}/m.trt"},     # no cache file: TAO writes ./cal.bin, lost
    {"onnx_route": "onnx"},                                 # keras_exporter.py asserts, after loading the spec
])
def test_export_commands_that_would_not_leave_what_they_promise_are_refused(changes):
    with pytest.raises(ConfigError):
        export_command(**{"model": f"{M}/m.hdf5", "output": f"{R}/m.onnx", "spec": "/s.txt", "results_dir": R}
                       | changes)


def test_gen_trt_engine_reuses_exports_calibration_cache():
    cache = Int8Calibration(f"{R}/calibration.bin", reuse=True)
    command = gen_trt_engine_command(model="/x/m.onnx", spec="/s.txt", results_dir=R, engine_file=f"{R}/m.engine",
                                     calibration=cache, batch_sizes=BatchSizes(1, 8, 64))
    assert command.outputs == (f"{R}/m.engine",)  # the cache is read, not written
    assert "--batches" not in command.argv and command.argv[-2:] == ("--cal_cache_file", f"{R}/calibration.bin")
    assert command.argv[command.argv.index("--opt_batch_size") + 1] == "8"


@pytest.mark.parametrize("changes", [
    {"engine_file": ""},                                       # builds nothing, says SUCCESS
    {"model": f"{M}/m.hdf5"},                                  # "Feature not implemented"
    {"calibration": None},                                     # INT8 without a cache: TypeError in TAO Deploy
    {"batch_sizes": BatchSizes(1, 64, 8)},
    {"calibration": Int8Calibration(f"{R}/c.bin", batch_size=0)},
])
def test_gen_trt_engine_commands_tao_would_get_wrong_are_refused(changes):
    args = {"model": "/x/m.onnx", "spec": "/s.txt", "results_dir": R, "engine_file": f"{R}/m.engine",
            "data_type": "int8", "calibration": Int8Calibration(f"{R}/c.bin")}
    with pytest.raises(ConfigError):
        gen_trt_engine_command(**(args | changes))


# --- outputs already there, before the container starts -----------------------------------------


def export_plan(root: Path, run_id: str, image: str | None = None, user: str | None = None):
    (root / "spec").mkdir(parents=True, exist_ok=True)
    (root / "spec" / "retrain.txt").write_text(spec_text("tao_tutorials_5.5__detectnet_v2_retrain_resnet18_kitti.txt"))
    (root / "model").mkdir(exist_ok=True)
    (root / "model" / "m.hdf5").write_text("standin model after epoch 3 pruned ratio=0.3\n")
    command = export_command(model=f"{M}/m.hdf5", output=f"{R}/m.onnx", spec=f"{container_path(Slot.SPEC)}/retrain.txt",
                             results_dir=R)
    plan = build_plan(command, slots={Slot.SPEC: root / "spec", Slot.BASE_MODEL: root / "model",
                                      Slot.RESULTS: root / "results"}, run_id=run_id,
                      image=image or "unused-by-the-process-launcher", docker_gpus="none", user=user,
                      network_mode="none")
    return plan.with_options(ulimits=(("memlock", host_memlock_limit()), ("stack", 67108864)))


def leave(root: Path, owner: str, *names: str) -> None:
    results = root / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / RUN_MARKER).write_text(owner + "\n")
    for name in names:
        (results / name).write_text(f"left by {owner}\n")


def test_an_earlier_attempt_of_the_same_run_is_cleared_and_the_export_runs(harness):
    plan = export_plan(harness.root, "run-a", harness.image, harness.user)
    leave(harness.root, "run-a", "m.onnx", "labels.txt")
    result = run_export(plan, harness.launcher)
    assert result.onnx.read_text().startswith("standin ONNX")
    assert result.labels.read_text() == "car\ncyclist\npedestrian\n"


def test_another_runs_output_is_refused_before_any_container_starts(harness):
    plan = export_plan(harness.root, "run-b", harness.image, harness.user)
    leave(harness.root, "run-a", "m.onnx")
    with pytest.raises(LaunchError) as caught:
        run_export(plan, harness.launcher)
    error = caught.value
    assert "already exists (left by run run-a)" in error.what and error.where.endswith("results/m.onnx")
    assert "model_subfolder" in error.fix
    # Nothing ran: no status line, the file untouched, no container of this run.
    assert not (harness.root / "results" / "status.json").exists()
    assert (harness.root / "results" / "m.onnx").read_text() == "left by run-a\n"
    if harness.docker_client is not None:
        assert harness.docker_client.containers.list(all=True, filters={"label": f"{RUN_LABEL}=run-b"}) == []


def test_a_planted_link_is_removed_never_followed(tmp_path):
    target = tmp_path / "precious.txt"
    target.write_text("keep me\n")
    plan = export_plan(tmp_path, "run-a")
    leave(tmp_path, "run-a")
    (tmp_path / "results" / "m.onnx").symlink_to(target)
    assert prepare_outputs(plan) == [tmp_path / "results" / "m.onnx"]
    assert target.read_text() == "keep me\n" and not (tmp_path / "results" / "m.onnx").is_symlink()


def test_prune_into_the_folder_of_another_run_is_refused(tmp_path):
    (tmp_path / "model").mkdir()
    command = prune_command(model=f"{M}/m.hdf5", output=f"{R}/p.hdf5", results_dir=R)
    plan = build_plan(command, slots={Slot.BASE_MODEL: tmp_path / "model", Slot.RESULTS: tmp_path / "results"},
                      run_id=uuid.uuid4().hex, docker_gpus="none")
    leave(tmp_path, "someone-else", "p.hdf5")
    with pytest.raises(LaunchError):
        run_prune(plan, launcher=None)  # refused before the launcher is asked for anything
