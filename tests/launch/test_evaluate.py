"""`detectnet_v2 evaluate` as TAO really behaves: the judge on NVIDIA's recorded endings, the stand-in
against them (in the image through dockerd and as a process), and evaluate's own results folder."""

from __future__ import annotations

import dataclasses
import json
import uuid
from pathlib import Path

import pytest

from tasks.launch import EvaluationFailed, build_plan, evaluate_command, run_evaluation, run_training
from tasks.launch.base import JobOutcome
from tasks.launch.evaluation import DISAGREE, MODEL_MISSING, NOT_FINITE, SPEC_REJECTED, WRONG_KEY, judge_evaluation
from tasks.launch.slots import Slot, container_path, container_spec_file
from tasks.launch.status import StatusLog
from tests.launch.harness import Recorder, host_memlock_limit
from tests.standin.evaluate_traces import EVALUATE_SCENARIOS, evaluate_differences, left_in, load_evaluate_trace

TRACE_CLASSES = ("car", "cyclist", "pedestrian")


def evaluate_plan(harness, *, model_file: str = "resnet18_detector.hdf5", model_text: str | None = "",
                  key: str | None = None, env: dict | None = None, model_dir: Path | None = None,
                  results: Path | None = None):
    """An evaluate job on the harness's launcher: the spec of the recordings (three classes), the model
    in its own read-only folder, a results folder of its own."""
    slots = harness.folders(3, classes=TRACE_CLASSES)
    model_dir = model_dir or harness.root / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    if model_text is not None:
        (model_dir / model_file).write_text(model_text)
    command = evaluate_command(spec=container_spec_file(), model=f"{container_path(Slot.EVALUATED_MODEL)}/{model_file}",
                               results_dir=container_path(Slot.RESULTS), key=key)
    plan = build_plan(command, slots={Slot.SPEC: slots[Slot.SPEC], Slot.EVALUATED_MODEL: model_dir,
                                      Slot.RESULTS: results or harness.root / "evaluate"},
                      run_id=uuid.uuid4().hex, image=harness.image or "unused-by-the-process-launcher",
                      docker_gpus="none", user=harness.user, env=env, network_mode="none")
    return plan.with_options(ulimits=(("memlock", host_memlock_limit()), ("stack", 67108864)))


def model_seen_by_tao(harness, plan) -> str:
    """-m as the stand-in received it: the container path, or its host path for a process."""
    return plan.command.model if harness.kind == "docker" else str(plan.mounts.host_path(plan.command.model))


# --- the judge on the recordings ---------------------------------------------------------------


def replay(trace, root: Path) -> JobOutcome:
    """The launcher's view when evaluate ended: status.json followed while it was written, the console tail."""
    results = root / "results"
    results.mkdir(parents=True)
    status = StatusLog(results / "status.json")
    (results / "status.json").write_text("".join(json.dumps(r) + "\n" for r in trace.records))
    status.poll()
    status.finish()
    return JobOutcome(exit_code=trace.exit_code, status=status, log_tail=trace.console[-50:])


@pytest.mark.parametrize("scenario", EVALUATE_SCENARIOS)
def test_the_judge_on_nvidias_recorded_endings(tmp_path, scenario):
    trace = load_evaluate_trace(scenario)
    plan = build_plan(evaluate_command(spec=trace.option("-e"), model=trace.option("-m"),
                                       results_dir=container_path(Slot.RESULTS)),
                      slots={Slot.RESULTS: tmp_path / "results"}, run_id="trace")
    outcome = replay(trace, tmp_path)
    if scenario == "success":
        result = judge_evaluation(outcome, plan)
        assert result.average_precision == {"car": 86.1218, "cyclist": 69.4445, "pedestrian": 56.0027}
        assert result.mean_average_precision == 70.523 and result.validation_cost == 0.00012346
        # The console table, the cross-check, has the unrounded values.
        assert result.console_table == {"car": 86.1218181818182, "cyclist": 69.44454545454546,
                                        "pedestrian": 56.00272727272727}
        return
    with pytest.raises(EvaluationFailed) as caught:
        judge_evaluation(outcome, plan)
    error = caught.value
    assert error.reason == {"missing_model": MODEL_MISSING, "wrong_key_tlt": WRONG_KEY}[scenario]
    assert error.container_exit_code == trace.exit_code  # 0 ("PASS") for the wrong key: judged a failure all the same
    assert error.transient is False, "neither a missing model nor a wrong key changes with a retry"
    assert trace.records[-1]["message"] in error.render()


def test_a_console_that_contradicts_status_json_is_a_failure(tmp_path):
    trace = load_evaluate_trace("success")
    outcome = replay(trace, tmp_path)
    outcome.log_tail = [line.replace("86.1218181818182", "96.1218181818182") for line in outcome.log_tail]
    plan = build_plan(evaluate_command(spec="/s", model="/m.hdf5", results_dir=container_path(Slot.RESULTS)),
                      slots={Slot.RESULTS: tmp_path / "results"}, run_id="trace")
    with pytest.raises(EvaluationFailed) as caught:
        judge_evaluation(outcome, plan)
    assert caught.value.reason == DISAGREE and "AP of car" in caught.value.render()


# --- the stand-in against the recordings, on both launchers ----------------------------------


@pytest.mark.parametrize("scenario", EVALUATE_SCENARIOS)
def test_the_standin_evaluates_like_tao(harness, scenario):
    trace = load_evaluate_trace(scenario)
    model_file = Path(trace.option("-m")).name
    if scenario == "missing_model":
        plan = evaluate_plan(harness, model_file=model_file, model_text=None)
    elif scenario == "wrong_key_tlt":
        plan = evaluate_plan(harness, model_file=model_file, model_text="key=the_right_key\n", key=trace.option("-k"))
    else:
        plan = evaluate_plan(harness, model_file=model_file, model_text="standin model after epoch 3\n")
    seen = Recorder()
    outcome = harness.launcher.run(plan, seen.observer())
    results = plan.results_host_dir
    records = [json.loads(line) for line in (results / "status.json").read_text().splitlines()]
    problems = evaluate_differences(trace, records, left_in(results), seen.lines, outcome.exit_code,
                                    model_seen_by_tao(harness, plan))
    assert problems == []


# --- evaluate as a step ---------------------------------------------------------------------------


def test_evaluate_scores_the_trained_model_in_a_folder_of_its_own(harness):
    train = harness.plan(epochs=3, name="detector", validation_period=1, classes=TRACE_CLASSES)
    trained = run_training(train, harness.launcher)
    train_status = (trained.results_dir / "status.json").read_bytes()
    plan = evaluate_plan(harness, model_file="detector.hdf5", model_text=None, model_dir=trained.model_path.parent)
    first = run_evaluation(plan, harness.launcher)
    # The stand-in's AP comes from the model it trained: 100 - 50/(E+1) - 8i for E = 3 epochs.
    assert first.average_precision == {"car": 87.5, "cyclist": 79.5, "pedestrian": 71.5}
    assert first.mean_average_precision == 79.5
    assert first.console_table == first.average_precision
    # Evaluated again (a retry): status.json is replaced, never appended to, and train's is untouched.
    again = run_evaluation(plan, harness.launcher)
    assert again.average_precision == first.average_precision
    assert len((plan.results_host_dir / "status.json").read_text().splitlines()) == 4
    assert (trained.results_dir / "status.json").read_bytes() == train_status
    assert plan.results_host_dir != trained.results_dir


def test_a_refused_spec_passes_and_is_still_a_failure(harness):
    plan = evaluate_plan(harness, model_text="standin model after epoch 2\n", env={"TAO_STANDIN_REJECT_SPEC": "1"})
    with pytest.raises(EvaluationFailed) as caught:
        run_evaluation(plan, harness.launcher)
    assert caught.value.reason == SPEC_REJECTED
    assert caught.value.container_exit_code == 0 and not caught.value.transient
    assert "Execution status: PASS" in caught.value.log_tail


def test_a_stop_of_evaluate_goes_straight_to_sigterm():
    from tasks.launch import DockerLauncher, ProcessLauncher
    from tasks.launch.execute import _no_grace

    for launcher in (DockerLauncher(), ProcessLauncher(executable="detectnet_v2")):
        quick = _no_grace(launcher)
        assert quick.policy.graceful_seconds == 0 and launcher.policy.graceful_seconds > 0
        assert quick.policy.terminate_seconds == launcher.policy.terminate_seconds


@pytest.mark.parametrize("where,value", [("mean average precision", "inf"), ("mean average precision", "nan"),
                                         ("mean average precision", "-inf"), ("car", "inf")])
def test_a_metric_that_is_not_a_finite_number_is_no_result(tmp_path, where, value):
    """status.json as TAO's success, with `Infinity` or `NaN` where a number was (json.dumps writes
    them): an infinite mAP was once promoted and made champion.json something that is not JSON."""
    trace = load_evaluate_trace("success")
    number = float(value)

    def planted(record: dict) -> dict:
        record = json.loads(json.dumps(record))
        if "kpi" in record and where in record["kpi"]:
            record["kpi"][where] = number
        if "categorical" in record and where in record["categorical"]["average_precision"]:
            record["categorical"]["average_precision"][where] = number
        return record

    plan = build_plan(evaluate_command(spec=trace.option("-e"), model=trace.option("-m"),
                                       results_dir=container_path(Slot.RESULTS)),
                      slots={Slot.RESULTS: tmp_path / "results"}, run_id="trace")
    outcome = replay(dataclasses.replace(trace, records=[planted(r) for r in trace.records]), tmp_path)
    assert ("Infinity" if "inf" in value else "NaN") in (tmp_path / "results" / "status.json").read_text()
    with pytest.raises(EvaluationFailed) as caught:
        judge_evaluation(outcome, plan)
    assert caught.value.reason == NOT_FINITE and not caught.value.transient
    assert ("mAP is" if where.startswith("mean") else "AP of car is") in caught.value.what
