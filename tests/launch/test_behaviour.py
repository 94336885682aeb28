"""The launcher's promises, on the real dockerd with the stand-in image AND on the stand-in
script run as a process: the same cases, parametrized over both launchers."""

from __future__ import annotations

import threading
import time

import pytest

from tasks.errors import LaunchError, TrainingCancelled, TrainingFailed
from tasks.launch import CancelToken, run_training
from tasks.launch.plan import RUN_LABEL
from tasks.launch.results import RUN_MARKER
from tests.launch.harness import Recorder


def starts(results) -> list[int]:
    return [int(line.split("=")[1]) for line in (results / "standin_starts.txt").read_text().split()]


def test_success_lands_model_and_status_owned_by_the_user(harness):
    plan = harness.plan(epochs=4, log_file="train.log")
    seen = Recorder()
    result = run_training(plan, harness.launcher, seen.observer())
    results = plan.results_host_dir
    assert result.model_path == results / "weights" / "detector.hdf5"
    for path in (result.model_path, results / "status.json", results / "model.epoch-4.ckzip"):
        assert path.stat().st_uid == harness.expected_uid, path
    # TAO's documented reading: epoch lines 0..N-1, the number being the epochs completed.
    assert [e.epoch for e in seen.epochs] == [0, 1, 2, 3]
    assert all(e.max_epoch == 4 for e in seen.epochs)
    assert seen.epochs[0].loss == pytest.approx(0.01) and seen.epochs[0].learning_rate == pytest.approx(5e-5)
    # Validation on first_validation_epoch + i * period (1, 3) and on the last epoch (4).
    assert [v.epoch for v in seen.validations] == [1, 3, 4]
    assert set(seen.validations[-1].average_precision) == {"car", "pedestrian"}
    assert seen.validations[-1].mean_average_precision == pytest.approx(65.0)
    assert result.final_map == pytest.approx(65.0) and result.completed_epochs == 4
    assert any("Epoch 3/4: loss:" in line for line in seen.lines)
    assert seen.lines[-1] == "Execution status: PASS"
    # --log_file is ours: the console still streamed, and the file holds the same lines.
    assert "--log_file" not in plan.command.argv
    assert (results / "train.log").read_text().splitlines() == seen.lines
    assert (results / RUN_MARKER).read_text().strip() == plan.run_id


def test_failure_at_epoch_3_then_retry_resumes_from_epoch_2(harness):
    plan = harness.plan(epochs=5)
    failing = plan.with_options(env=dict(plan.env, TAO_STANDIN_FAIL_AT_EPOCH="3"))
    with pytest.raises(TrainingFailed) as caught:
        run_training(failing, harness.launcher, Recorder().observer())
    error = caught.value
    assert error.container_exit_code == 255  # TAO's wrapper turns any failure into 255
    assert error.reason == "crashed"
    assert error.resumable and error.transient
    assert error.tao_error == "RuntimeError: standin: injected failure in epoch 3"
    assert "crashed in epoch 3 of 5" in str(error) and "Execution status: FAIL" in str(error)
    results = plan.results_host_dir
    # TAO saves the model on the way out of a crash too: the file alone proves nothing.
    assert (results / "weights" / "detector.hdf5").exists()

    result = run_training(plan, harness.launcher, Recorder().observer())  # the retry: same run, same folder
    assert starts(results) == [0, 2]
    assert [e.epoch for e in result.epochs] == [2, 3, 4]
    assert result.model_path.is_file() and result.completed_epochs == 5


def test_success_status_with_missing_epochs_is_not_success(harness):
    plan = harness.plan(epochs=3)
    no_model = plan.with_options(env=dict(plan.env, TAO_STANDIN_NO_MODEL="1"))
    with pytest.raises(TrainingFailed) as caught:
        run_training(no_model, harness.launcher)
    assert caught.value.reason == "final model missing"
    assert caught.value.container_exit_code == 0  # exit 0 and SUCCESS, still not a trained model


def test_cancel_mid_run_stops_within_10s_and_keeps_checkpoints(harness):
    plan = harness.plan(epochs=30)
    plan = plan.with_options(env=dict(plan.env, TAO_STANDIN_EPOCH_SECONDS="1"))
    cancel = CancelToken()
    cancelled_at: list[float] = []

    def on_epoch(event):
        if event.epoch == 2 and not cancel.cancelled:
            cancelled_at.append(time.monotonic())
            cancel.cancel("test cancel")

    seen = Recorder()
    with pytest.raises(TrainingCancelled):
        run_training(plan, harness.launcher, seen.observer(on_epoch=on_epoch), cancel)
    elapsed = time.monotonic() - cancelled_at[0]
    assert elapsed < 10, elapsed
    results = plan.results_host_dir
    assert (results / "model.epoch-2.ckzip").exists()
    # SIGUSR1 reached the trainer: it saved its model (TAO's clean stop) instead of being killed.
    assert (results / "weights" / "detector.hdf5").exists()
    # ...and ended as tao-traces/train/*/sigusr1 does: "Training loop completed.", then SUCCESS.
    assert any("Training loop completed." in line for line in seen.lines)
    assert any("DetectNet_v2 training job complete." in line for line in seen.lines)
    if harness.kind == "docker":
        assert harness.docker_client.containers.list(all=True, filters={"label": f"{RUN_LABEL}={plan.run_id}"}) == []


def test_new_run_refuses_another_runs_checkpoints_unless_resume(harness):
    first = harness.plan(epochs=2)
    run_training(first, harness.launcher)
    intruder = harness.plan(epochs=3)  # a different run id, same results folder
    with pytest.raises(LaunchError) as caught:
        run_training(intruder, harness.launcher)
    assert "checkpoint" in str(caught.value) and "resume=True" in str(caught.value)
    result = run_training(intruder.with_options(resume=True), harness.launcher)
    assert [e.epoch for e in result.epochs] == [2] and result.start_epoch == 2 and result.epochs_trained == 1
    assert starts(first.results_host_dir) == [0, 2]


def test_secrets_appear_in_no_line_artifact_or_error(harness):
    key = "tlt-KEY-8c1f0e55"
    sas = "sv=2022-11-02&ss=b&srt=co&sp=rl&se=2030-01-01&sig=Zm9vYmFyc2VjcmV0c2lnbmF0dXJl%3D"
    connection = (
        "DefaultEndpointsProtocol=https;AccountName=acct;"
        "AccountKey=c2VjcmV0YWNjb3VudGtleXNlY3JldGFjY291bnRrZXk=;EndpointSuffix=core.windows.net"
    )
    env = {
        "AZURE_STORAGE_CONNECTION_STRING": connection,
        "AZURE_STORAGE_SAS_TOKEN": sas,
        # What a library might print: a URL with the SAS, the connection string itself.
        "TAO_STANDIN_ECHO": f"reading https://acct.blob.core.windows.net/data?{sas} with {connection}",
        "TAO_STANDIN_FAIL_AT_EPOCH": "2",
    }
    plan = harness.plan(epochs=3, key=key, env=env, log_file="train.log")
    seen = Recorder()
    with pytest.raises(TrainingFailed) as caught:
        run_training(plan, harness.launcher, seen.observer())
    secrets = [key, sas, connection, "c2VjcmV0YWNjb3VudGtleXNlY3JldGFjY291bnRrZXk=", "Zm9vYmFyc2VjcmV0c2lnbmF0dXJl"]
    shown = "\n".join(
        [*seen.lines, str(caught.value), repr(caught.value), plan.render(), str(plan.to_dict()), repr(plan),
         (plan.results_host_dir / "train.log").read_text()]
    )
    assert "-k ***" in shown and "data?***" in shown  # the lines were there, masked
    for secret in secrets:
        assert secret not in shown
    assert key in plan.command.argv  # ...while TAO itself still got the key


def test_stop_by_signal_from_another_thread_is_not_lost(harness):
    """A cancel that arrives while the job is starting is honoured as soon as the loop runs."""
    plan = harness.plan(epochs=30)
    plan = plan.with_options(env=dict(plan.env, TAO_STANDIN_EPOCH_SECONDS="1"))
    cancel = CancelToken()
    timer = threading.Timer(0.5, cancel.cancel, args=("early",))
    timer.start()
    started = time.monotonic()
    with pytest.raises(TrainingCancelled):
        run_training(plan, harness.launcher, Recorder().observer(), cancel)
    assert time.monotonic() - started < 12
