"""The judge on NVIDIA's own recorded endings (tao-traces/train, both epoch readings), engine-free:
the files are laid out as TAO left them, the status.json is read as the launcher reads it while
the trainer writes, and the verdict must be the one in tao-traces/README.md."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tasks.errors import TrainingFailed
from tasks.launch import build_plan, train_command
from tasks.launch.attempts import AttemptJournal
from tasks.launch.base import JobOutcome
from tasks.launch.judge import (
    BAD_DATA,
    OUT_OF_GPU_MEMORY,
    SPEC_REJECTED,
    STOPPED_EARLY,
    judge_training,
)
from tasks.launch.results import newest_checkpoint_epoch
from tasks.launch.slots import Slot
from tasks.launch.status import StatusLog
from tests.standin.traces import READINGS, SCENARIOS, TrainTrace, load_train_trace

FINAL_METRICS = {"car": 70.0, "pedestrian": 60.0}


def replay_on_disk(trace: TrainTrace, root: Path) -> JobOutcome:
    """What the launcher holds when the trainer ended: the results folder and a StatusLog that
    was opened before the trainer wrote its lines (a rerun's first start was there before)."""
    results = root / "results"
    results.mkdir(parents=True, exist_ok=True)
    sessions = trace.sessions()
    earlier, launched = sessions[:-1], sessions[-1]
    if earlier:
        (results / "status.json").write_text("".join(json.dumps(r) + "\n" for r in sum(earlier, [])))
        for name in trace.files:
            (results / name).parent.mkdir(parents=True, exist_ok=True)
            (results / name).write_text("left by the first run\n")
    status = StatusLog(results / "status.json", start_epoch=newest_checkpoint_epoch(results) or 0)
    with (results / "status.json").open("a") as handle:
        handle.write("".join(json.dumps(r) + "\n" for r in launched))
    for name in trace.files:
        (results / name).parent.mkdir(parents=True, exist_ok=True)
        (results / name).write_text("written by TAO\n")
    status.poll()
    status.finish()
    return JobOutcome(exit_code=trace.exit_code, status=status, log_tail=list(trace.console))


def plan_for(root: Path):
    return build_plan(train_command(num_epochs=3), slots={Slot.RESULTS: root / "results"}, run_id="trace")


@pytest.mark.parametrize("reading", READINGS)
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_judge_gives_the_verdict_of_the_table(tmp_path, reading, scenario):
    trace = load_train_trace(reading, scenario)
    outcome = replay_on_disk(trace, tmp_path)
    plan = plan_for(tmp_path)
    if scenario in {"complete", "rerun_finished"}:
        result = judge_training(outcome, plan)
        assert result.completed_epochs == 3 and result.model_path.name == "model.hdf5"
        assert result.final_map == 65.0 and result.per_class_ap == FINAL_METRICS
        assert [v.epoch for v in result.validations] == [1, 2, 3]
        assert result.epochs_trained == (0 if scenario == "rerun_finished" else 3)
        return
    with pytest.raises(TrainingFailed) as caught:
        judge_training(outcome, plan)
    error = caught.value
    expected = {"fail": BAD_DATA, "oom": OUT_OF_GPU_MEMORY, "interrupted": STOPPED_EARLY, "sigusr1": STOPPED_EARLY,
                "spec_rejected": SPEC_REJECTED}[scenario]
    assert error.reason == expected
    assert error.container_exit_code == trace.exit_code
    # A retry is made only where it helps: resuming a stopped run; never a repeatable failure.
    assert error.transient is (expected == STOPPED_EARLY)
    if expected == STOPPED_EARLY:
        assert error.completed_epochs == 1 and "stopped after epoch 1 of 3" in str(error)
    if scenario == "fail":
        assert "epoch 2 of 3: Invalid PNG data, size 1234" in str(error)
        assert error.tao_error == "tensorflow.python.framework.errors_impl.InvalidArgumentError: Invalid PNG data, size 1234"
    if scenario == "oom":
        assert error.tao_error.startswith("[TAO Toolkit] [ERROR] Ran out of GPU memory")
    if scenario == "spec_rejected":
        assert error.container_exit_code == 0 and "Execution status: PASS" in str(error)


@pytest.mark.parametrize("reading", READINGS)
def test_each_validation_belongs_to_the_epoch_it_followed(tmp_path, reading):
    trace = load_train_trace(reading, "complete")
    outcome = replay_on_disk(trace, tmp_path)
    by_epoch = {v.epoch: v.mean_average_precision for v in outcome.status.validations}
    assert by_epoch == {1: 45.0, 2: 55.0, 3: 65.0}
    # Progress: an epoch line's number is the epochs completed in both readings.
    assert [e.progress for e in outcome.status.epochs] == (
        [0.0, 100 / 3, 200 / 3] if reading == "zero-based" else [100 / 3, 200 / 3, 100.0])


def test_earlier_starts_of_unknown_reading_are_attributed_by_their_next_epoch_line(tmp_path):
    """A status.json with a finished one-based run read as history: its first validation comes
    before any epoch line and is placed by the line that follows it."""
    trace = load_train_trace("one-based", "rerun_finished")
    status_file = tmp_path / "status.json"
    status_file.write_text("".join(json.dumps(r) + "\n" for r in trace.records))
    log = StatusLog(status_file)
    assert [v.epoch for v in log.validations] == [1, 2, 3] and log.launched == []


def test_a_repeated_crash_at_the_same_point_is_not_retried_again(tmp_path):
    trace = load_train_trace("zero-based", "fail")
    crash = TrainTrace(trace.reading, "crash",
                       [dict(r, message="CUDA error: an illegal memory access") if r["status"] == "FAILURE" else r
                        for r in trace.records], trace.files, ["RuntimeError: CUDA error", "Execution status: FAIL"], 255)
    plan = plan_for(tmp_path)
    verdicts = []
    for _ in range(3):
        with pytest.raises(TrainingFailed) as caught:
            judge_training(replay_on_disk(crash, tmp_path), plan)
        verdicts.append((caught.value.reason, caught.value.transient))
    # The first crash may be bad luck and is worth one retry; the same crash again is not.
    assert verdicts == [("crashed", True), ("crashed", False), ("crashed", False)]
    assert "failed the same way at the same point" in str(caught.value)
    entries = AttemptJournal(plan.attempts_file).entries()
    assert [(e.message, e.completed) for e in entries] == [("CUDA error: an illegal memory access", 1)] * 3
