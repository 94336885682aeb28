"""A hostile trainer (the container writes -r, and taoflow runs as root on GPU hosts): what it
leaves is never followed. Links and FIFOs planted in the results folder end in one clear
LaunchError; the file a link points at is neither read nor written."""

from __future__ import annotations

import os
import stat

import pytest

from tasks.errors import LaunchError
from tasks.launch import run_training
from tests.launch.harness import Recorder
from tests.reliability import ledger

FAST = {"TAO_STANDIN_EPOCH_SECONDS": "0.02"}


def held() -> None:
    """Each case that held is one trial of the reliability report's hostile-trainer row."""
    ledger.record("hostile-trainer", trials=1, leaked=0)


def victim_file(harness):
    victim = harness.root / "outside" / "crontab"
    victim.parent.mkdir(parents=True, exist_ok=True)
    victim.write_text("0 3 * * * root /usr/bin/true\n")
    return victim


def test_a_log_file_replaced_by_a_link_is_not_appended_to_on_the_retry(harness):
    victim = victim_file(harness)
    plan = harness.plan(epochs=2, log_file="train.log", run_id="hostile-log")
    planted = plan.with_options(env=dict(plan.env, **FAST, TAO_STANDIN_PLANT_LINK=f"train.log={victim}"))
    run_training(planted, harness.launcher, Recorder().observer())
    assert (plan.results_host_dir / "train.log").is_symlink()
    with pytest.raises(LaunchError) as caught:
        run_training(plan.with_options(env=dict(plan.env, **FAST)), harness.launcher, Recorder().observer())
    assert "train.log in the results folder is a symbolic link" in str(caught.value)
    assert victim.read_text() == "0 3 * * * root /usr/bin/true\n"
    held()


def test_status_json_replaced_by_a_link_is_refused_not_read(harness):
    victim = victim_file(harness)
    plan = harness.plan(epochs=2, run_id="hostile-status")
    planted = plan.with_options(env=dict(plan.env, **FAST, TAO_STANDIN_PLANT_LINK=f"status.json={victim}"))
    with pytest.raises(LaunchError) as caught:
        run_training(planted, harness.launcher, Recorder().observer())
    assert "status.json in the results folder is a symbolic link" in str(caught.value)
    assert victim.read_text() == "0 3 * * * root /usr/bin/true\n"
    held()


def test_a_fifo_in_place_of_status_json_does_not_hang_the_judge(harness):
    plan = harness.plan(epochs=2, run_id="hostile-fifo")
    planted = plan.with_options(env=dict(plan.env, **FAST, TAO_STANDIN_PLANT_FIFO="status.json"))
    with pytest.raises(LaunchError) as caught:
        run_training(planted, harness.launcher, Recorder().observer())
    assert "status.json in the results folder is not a regular file" in str(caught.value)
    held()


def test_a_linked_model_file_is_no_model(harness):
    """weights/<name>.hdf5 as a link to a file outside: not the trained model (and never uploaded)."""
    victim = victim_file(harness)
    plan = harness.plan(epochs=2, run_id="hostile-model", name="model")
    planted = plan.with_options(env=dict(plan.env, **FAST, TAO_STANDIN_PLANT_LINK=f"weights/model.hdf5={victim}"))
    with pytest.raises(LaunchError) as caught:
        run_training(planted, harness.launcher, Recorder().observer())
    assert getattr(caught.value, "reason", None) == "final model missing"
    held()


def test_a_status_line_nested_100000_deep_is_a_foreign_line_not_a_crash(harness):
    """An earlier start left one absurdly nested line in status.json (it raised RecursionError, which no
    `except ValueError` caught, when the monitor read the history): the run is observed and judged as ever."""
    plan = harness.plan(epochs=2, run_id="hostile-nesting")
    plan.results_host_dir.mkdir(parents=True, exist_ok=True)
    (plan.results_host_dir / "status.json").write_bytes(b"[" * 100_000 + b"\n" + b'{"a": ' * 5_000 + b"\n")
    recorder = Recorder()
    result = run_training(plan.with_options(env=dict(plan.env, **FAST)), harness.launcher, recorder.observer())
    assert result.completed_epochs == 2 and [e.epoch for e in recorder.epochs] == [0, 1]
    held()


def test_a_fifo_in_place_of_the_log_file_is_refused_on_the_retry_without_blocking(harness):
    """The log file (the request's log_file, appended to by taoflow) replaced by a FIFO: opening it for
    writing raised a raw OSError (ENXIO, no reader). It is one clear LaunchError, and nothing waits for a reader."""
    plan = harness.plan(epochs=2, log_file="train.log", run_id="hostile-log-fifo")
    planted = plan.with_options(env=dict(plan.env, **FAST, TAO_STANDIN_PLANT_FIFO="train.log"))
    run_training(planted, harness.launcher, Recorder().observer())
    assert stat.S_ISFIFO(os.lstat(plan.results_host_dir / "train.log").st_mode)
    with pytest.raises(LaunchError) as caught:
        run_training(plan.with_options(env=dict(plan.env, **FAST)), harness.launcher, Recorder().observer())
    assert "train.log in the results folder is not a regular file" in str(caught.value)
    held()
