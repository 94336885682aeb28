"""Verdicts through the real launcher path.

1. NVIDIA's recorded endings replayed by the stand-in in a container on dockerd, under the
   Prefect task with its real retry policy: the verdict of tao-traces/README.md, the number of
   containers started (no retry where none helps), the final mAP and per-class AP.
2. The rebuilt stand-in itself (both launchers, both epoch readings) for runs of 5 and 12 epochs
   with checkpoint_interval 2, and for a run stopped in its last epoch.
"""

from __future__ import annotations

import time

import pytest
from prefect import flow

from tasks.errors import TrainingFailed
from tasks.launch import Mount, MountPlan, run_training
from tasks.launch.attempts import AttemptJournal
from tasks.launch.judge import BAD_DATA, OUT_OF_GPU_MEMORY, SPEC_REJECTED, STOPPED_EARLY
from tasks.launch.launch_tasks import train_detectnet_v2
from tasks.launch.plan import RUN_LABEL
from tasks.launch.results import RUN_MARKER
from tests.launch.harness import docker_harness
from tests.standin.traces import READINGS, SCENARIOS, load_train_trace, scenario_knobs, write_replay_bundle

pytestmark = pytest.mark.services

REPLAY_TARGET = "/standin/replay"
FAILED = {"fail": BAD_DATA, "oom": OUT_OF_GPU_MEMORY, "spec_rejected": SPEC_REJECTED}


def containers_started(client, run_id: str, since: float) -> int:
    """Containers of this run the engine started, from the engine's own event log."""
    events = client.events(since=int(since), until=int(time.time()) + 1, decode=True,
                           filters={"type": "container", "event": "start", "label": f"{RUN_LABEL}={run_id}"})
    return sum(1 for _ in events)


@pytest.mark.parametrize("reading", READINGS)
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_recorded_ending_replayed_through_dockerd(workdir, prefect_api, docker_client, standin_image, reading, scenario):
    trace = load_train_trace(reading, scenario)
    harness = docker_harness(workdir, docker_client, standin_image)
    plan = harness.plan(epochs=3, name="model", checkpoint_interval=10, validation_period=1)
    results, bundle = plan.results_host_dir, workdir / "replay"
    write_replay_bundle(trace, bundle, results)
    (results / RUN_MARKER).write_text(plan.run_id + "\n")  # a finished folder of this same run
    # After the recorded ending, a retry runs the stand-in proper (resuming what the replay left).
    env = scenario_knobs("complete", reading) | {"TAO_STANDIN_REPLAY": REPLAY_TARGET, "TAO_STANDIN_REPLAY_ONCE": "1"}
    plan = plan.with_options(env=dict(plan.env, **env),
                             mounts=MountPlan(plan.mounts.mounts + (Mount(str(bundle), REPLAY_TARGET, True),)))
    task = train_detectnet_v2.with_options(retry_delay_seconds=0)
    since = time.time() - 1

    @flow(name="replay-recorded-ending")
    def replay():
        try:
            return task(plan, harness.launcher, artifact_prefix=f"replay-{scenario}")
        except TrainingFailed as exc:
            return exc

    outcome = replay()
    started = containers_started(docker_client, plan.run_id, since)
    first = AttemptJournal(plan.attempts_file).entries()[0]
    if scenario in FAILED:
        assert isinstance(outcome, TrainingFailed) and outcome.reason == FAILED[scenario]
        assert started == 1, "a failure a retry cannot fix was retried"
        assert outcome.container_exit_code == trace.exit_code
        return
    assert not isinstance(outcome, Exception), outcome
    assert outcome.final_map == 65.0 and outcome.per_class_ap == {"car": 70.0, "pedestrian": 60.0}
    assert outcome.completed_epochs == 3 and outcome.model_path.is_file()
    if scenario in {"interrupted", "sigusr1"}:
        # SUCCESS, yet stopped after epoch 1: resumed once from model.epoch-1.ckzip, then complete.
        assert (first.ending, first.completed) == (STOPPED_EARLY, 1)
        assert started == 2
        assert (results / "standin_starts.txt").read_text().split() == ["started_from_epoch=replay", "started_from_epoch=1"]
    else:
        assert first.ending == "completed" and started == 1
        assert outcome.epochs_trained == (0 if scenario == "rerun_finished" else 3)


@pytest.mark.parametrize("reading", READINGS)
@pytest.mark.parametrize("epochs", [5, 12])
@pytest.mark.parametrize("scenario", [*SCENARIOS, "stopped_in_last_epoch"])
def test_verdicts_for_longer_runs_with_checkpoint_interval_2(harness, epochs, reading, scenario):
    at = epochs if scenario == "stopped_in_last_epoch" else 3
    knobs = scenario_knobs("sigusr1" if scenario == "stopped_in_last_epoch" else scenario, reading, at_epoch=at)
    plan = harness.plan(epochs=epochs, checkpoint_interval=2, validation_period=1)
    plan = plan.with_options(env=dict(plan.env, **knobs))
    if scenario == "rerun_finished":
        run_training(plan, harness.launcher)
    if scenario in {"complete", "rerun_finished"}:
        result = run_training(plan, harness.launcher)
        assert result.completed_epochs == epochs
        assert result.final_map == 65.0 and result.per_class_ap == {"car": 70.0, "pedestrian": 60.0}
        assert [v.epoch for v in result.validations] == list(range(1, epochs + 1))
        assert result.epochs_trained == (0 if scenario == "rerun_finished" else epochs)
        saved = sorted(int(p.name.split("-")[1].split(".")[0]) for p in plan.results_host_dir.glob("*.ckzip"))
        assert saved == sorted({*range(0, epochs + 1, 2), epochs})
        return
    with pytest.raises(TrainingFailed) as caught:
        run_training(plan, harness.launcher)
    error = caught.value
    if scenario in FAILED:
        assert error.reason == FAILED[scenario] and not error.transient
        if scenario != "spec_rejected":
            assert f"in epoch 3 of {epochs}" in str(error) and error.completed_epochs == 2
        return
    stopped_after = at - 1
    assert error.reason == STOPPED_EARLY and error.transient
    assert error.completed_epochs == stopped_after
    assert f"stopped after epoch {stopped_after} of {epochs}" in str(error)
