"""The judges of prune, export and gen_trt_engine on the recorded endings (tao-traces/prune, tao-traces/export,
deploy_traces/gen_trt_engine), engine-free: the results folder laid out as TAO left it, status.json read as
the launcher reads it (a former run's lines there before it opened), the console tail, the exit code.
Every ending gets the verdict the recording's README gives it; the commands the builders refuse (the traps)
are judged all the same, from a command made without them."""

from __future__ import annotations

import json
import posixpath
from pathlib import Path

import pytest

from tasks.errors import ConfigError, EngineBuildFailed, ExportFailed, PruneFailed
from tasks.launch import build_plan
from tasks.launch.base import JobOutcome
from tasks.launch.chain_commands import (
    DS_CONFIG_FILES,
    ChainCommand,
    Int8Calibration,
    PruneOptions,
    export_command,
    gen_trt_engine_command,
    prune_command,
)
from tasks.launch.engine_build import (
    BUILD_FAILED,
    FILE_ERROR,
    NO_CAL_IMAGES,
    NO_ENGINE,
    NOT_ENOUGH_CAL_IMAGES,
    ONNX_REFUSED,
    PARAMETER_ERROR,
    TENSORFILE_BUG,
    UNSUPPORTED,
    judge_gen_trt_engine,
)
from tasks.launch.mounts import Mount, MountPlan
from tasks.launch.plan import LaunchPlan
from tasks.launch.prune_export import OUTPUT_EXISTS, OUTPUT_MISSING, SUFFIX_TRAP, judge_export, judge_prune
from tasks.launch.status import StatusLog
from tasks.launch.step_verdict import GPUS_NOT_VISIBLE
from tests.standin.chain_traces import ENGINE_SCENARIOS, StepTrace, load_step_trace

WORKSPACE = "/workspace/tao-experiments"


def history(trace: StepTrace) -> int:
    """Status lines a former run left before this one started (a re-run appends)."""
    if trace.runs == 1:
        return 0
    if trace.subtask == "gen_trt_engine":
        return max(i for i, r in enumerate(trace.records) if r["status"] == "STARTED")
    return len(load_step_trace(trace.subtask, "success").records)  # export/output_exists re-runs the success


def replay(trace: StepTrace, root: Path) -> tuple[JobOutcome, MountPlan]:
    """The host side of the recording: /workspace/tao-experiments mounted from `root`, its files there."""
    mounts = MountPlan((Mount(str(root), WORKSPACE, False),))
    for path, size, _ in trace.files:
        host = mounts.host_path(path)
        host.parent.mkdir(parents=True, exist_ok=True)
        host.write_bytes(b"x" * min(size, 64))
    status_file = mounts.host_path(posixpath.join(trace.results_dir, "status.json"))
    status_file.parent.mkdir(parents=True, exist_ok=True)
    earlier = history(trace)
    status_file.write_text("".join(json.dumps(r) + "\n" for r in trace.records[:earlier]))
    status = StatusLog(status_file)
    with status_file.open("a") as handle:
        handle.write("".join(json.dumps(r) + "\n" for r in trace.records[earlier:]))
    status.poll()
    status.finish()
    return JobOutcome(exit_code=trace.exit_code, status=status, log_tail=trace.console[-50:]), mounts


def command_for(trace: StepTrace) -> ChainCommand:
    """The builders' command for the recorded one; where a builder refuses it (a trap it exists to catch),
    that is checked and the recorded command is declared as the builder would have."""
    o, results = trace.option, trace.results_dir
    calibration = Int8Calibration(o("--cal_cache_file"), int(o("--batches") or 10), int(o("--batch_size") or 1),
                                  o("--cal_image_dir")) if o("--cal_cache_file") else None
    try:
        if trace.subtask == "prune":
            return prune_command(model=o("-m"), output=o("-o"), results_dir=results,
                                 options=PruneOptions(threshold=float(o("-pth"))))
        if trace.subtask == "export":
            return export_command(model=o("-m"), output=o("-o"), spec=o("-e"), results_dir=results)
        if o("--cal_data_file"):
            raise ConfigError("the builder never passes --cal_data_file")
        return gen_trt_engine_command(model=o("-m"), spec=o("-e"), results_dir=results, engine_file=o("--engine_file"),
                                      data_type=o("--data_type") or "fp32", calibration=calibration)
    except ConfigError:
        assert trace.scenario in {"no_hdf5_suffix", "fp16_without_engine_file", "fp32_without_engine_file",
                                  "int8_without_cal_cache_file",
                                  "wrong_model_suffix", "cal_data_file_finds_no_images"}, trace.scenario
    outputs = tuple(p for p in (o("-o"), o("--engine_file"), o("--cal_cache_file")) if p)
    return ChainCommand(subtask=trace.subtask, argv=("detectnet_v2", trace.subtask, *trace.argv), results_dir=results,
                        model=o("-m"), artifact=outputs[0] if outputs else "", outputs=outputs,
                        data_type=o("--data_type") or "fp32", engine_file=o("--engine_file"), calibration=calibration)


def judged(subtask: str, scenario: str, root: Path):
    trace = load_step_trace(subtask, scenario)
    outcome, mounts = replay(trace, root)
    plan = LaunchPlan(command_for(trace), mounts, run_id="trace")
    judge = {"prune": judge_prune, "export": judge_export, "gen_trt_engine": judge_gen_trt_engine}[subtask]
    return trace, lambda: judge(outcome, plan)


def test_prune_success_gives_the_pruned_model_and_its_ratio(tmp_path):
    _, judge = judged("prune", "success", tmp_path)
    result = judge()
    assert result.model_path.name == "resnet18_nopool_bn_detectnet_v2_pruned.hdf5"
    assert (result.pruning_ratio, result.size_mb, result.param_count) == (0.28675465541756007, 12.4268798828125,
                                                                           3.212519)


def test_prune_without_the_hdf5_suffix_is_refused_before_and_judged_after(tmp_path):
    trace, judge = judged("prune", "no_hdf5_suffix", tmp_path)
    with pytest.raises(ConfigError) as refused:
        prune_command(model=trace.option("-m"), output=trace.option("-o"), results_dir=trace.results_dir)
    assert refused.value.where == "prune -o" and ".hdf5" in refused.value.fix
    with pytest.raises(PruneFailed) as caught:
        judge()
    assert caught.value.reason == SUFFIX_TRAP and caught.value.container_exit_code == 255
    assert not caught.value.transient and "pruned.tlt.hdf5" in str(caught.value)


def test_export_success_gives_every_file(tmp_path):
    _, judge = judged("export", "success", tmp_path)
    result = judge()
    assert result.onnx.name == "resnet18_detector.onnx" and result.onnx.parent == result.labels.parent
    assert (result.labels.name, result.nvinfer_config.name) == DS_CONFIG_FILES
    assert (result.engine, result.cal_cache) == (None, None)
    assert (result.size_mb, result.param_count) == (12.247185707092285, 3.212519)


def test_export_onto_an_existing_output_is_a_final_failure(tmp_path):
    _, judge = judged("export", "output_exists", tmp_path)
    with pytest.raises(ExportFailed) as caught:
        judge()
    assert caught.value.reason == OUTPUT_EXISTS and caught.value.container_exit_code == 255
    assert not caught.value.transient


def test_export_that_says_success_without_the_ds_config_is_a_failure(tmp_path):
    trace, judge = judged("export", "success", tmp_path)
    (tmp_path / "detectnet_v2/experiment_dir_final/labels.txt").unlink()
    with pytest.raises(ExportFailed) as caught:
        judge()
    assert caught.value.reason == OUTPUT_MISSING and "labels.txt" in str(caught.value)
    assert caught.value.container_exit_code == 0


def test_a_link_where_the_pruned_model_should_be_is_no_model(tmp_path):
    _, judge = judged("prune", "success", tmp_path)
    model = tmp_path / "detectnet_v2/experiment_dir_pruned/resnet18_nopool_bn_detectnet_v2_pruned.hdf5"
    model.unlink()
    model.symlink_to("/etc/passwd")
    with pytest.raises(PruneFailed) as caught:
        judge()
    assert caught.value.reason == OUTPUT_MISSING


def test_a_wrapper_that_cannot_see_the_gpu_ended_nothing_a_retry_can_mend(tmp_path):
    command = prune_command(model=f"{WORKSPACE}/m.hdf5", output=f"{WORKSPACE}/r/p.hdf5", results_dir=f"{WORKSPACE}/r")
    plan = LaunchPlan(command, MountPlan((Mount(str(tmp_path), WORKSPACE, False),)), run_id="gpu")
    console = ["Traceback (most recent call last):", "AssertionError: Checking for valid GPU ids and num_gpus.",
               "Execution status: FAIL"]
    outcome = JobOutcome(exit_code=255, status=StatusLog(tmp_path / "r" / "status.json"), log_tail=console)
    with pytest.raises(PruneFailed) as caught:
        judge_prune(outcome, plan)
    assert caught.value.reason == GPUS_NOT_VISIBLE and not caught.value.transient


ENGINE_VERDICTS = {
    "success_fp16": None, "success_int8": None, "cal_images_fewer_than_asked": None, "rerun": None,
    "fp16_without_engine_file": NO_ENGINE, "fp32_without_engine_file": NO_ENGINE,
    "int8_without_cal_cache_file": PARAMETER_ERROR,
    "cal_images_fewer_than_a_batch": NOT_ENOUGH_CAL_IMAGES, "cal_data_file_finds_no_images": TENSORFILE_BUG,
    "no_cal_images": NO_CAL_IMAGES, "onnx_parse_error": ONNX_REFUSED, "build_failed": BUILD_FAILED,
    "build_failed_py310": BUILD_FAILED, "wrong_model_suffix": UNSUPPORTED, "missing_spec": FILE_ERROR,
}


def test_every_recorded_engine_ending_has_a_verdict():
    assert sorted(ENGINE_VERDICTS) == sorted(ENGINE_SCENARIOS)


@pytest.mark.parametrize("scenario", ENGINE_SCENARIOS)
def test_the_engine_judge_gives_the_verdict_of_the_recording(tmp_path, scenario):
    trace, judge = judged("gen_trt_engine", scenario, tmp_path)
    expected = ENGINE_VERDICTS[scenario]
    if expected is None:
        result = judge()
        assert result.engine.name == "resnet18_detector.trt" and result.data_type == trace.option("--data_type")
        assert (result.cal_cache is not None) is (result.data_type == "int8")
        if scenario == "cal_images_fewer_than_asked":
            assert result.calibration_images == 8 and "used 8 images, not the 40" in result.warnings[0]
        else:
            assert result.warnings == ()
        return
    with pytest.raises(EngineBuildFailed) as caught:
        judge()
    error = caught.value
    assert error.reason == expected and error.container_exit_code == trace.exit_code
    # Only a failed TensorRT build may go better on another try; everything else needs a change first.
    assert error.transient is (expected == BUILD_FAILED)
    if trace.records[-1]["status"] == "FAILURE":
        assert trace.records[-1]["message"] in error.render()


def test_a_build_that_fails_again_the_same_way_is_not_retried(tmp_path):
    verdicts = []
    for _ in range(2):
        _, judge = judged("gen_trt_engine", "build_failed", tmp_path / "run")
        with pytest.raises(EngineBuildFailed) as caught:
            judge()
        verdicts.append(caught.value.transient)
    assert verdicts == [True, False]


def test_the_status_of_a_former_run_is_not_this_runs_success(tmp_path):
    """`rerun` appended to a finished folder: a judge reading the whole file would take the first run's SUCCESS
    for this one; with this run's lines being a failure, it must fail."""
    trace = load_step_trace("gen_trt_engine", "rerun")
    failing = StepTrace(trace.subtask, "rerun", trace.argv, trace.records[:3] + [
        dict(trace.records[3], status="FAILURE", message="File system error: disk full")], trace.files,
        trace.console, 1)
    outcome, mounts = replay(failing, tmp_path)
    plan = build_plan(command_for(trace), slots={}, run_id="r", tao_mounts=None).with_options(mounts=mounts)
    with pytest.raises(EngineBuildFailed) as caught:
        judge_gen_trt_engine(outcome, plan)
    assert caught.value.reason == FILE_ERROR
