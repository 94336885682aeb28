"""Trainer faults on real dockerd with the stand-in TAO image: crashes at random epochs retried
by the Prefect task (resume from the checkpoint), and cancellation at random moments, during
training or during publishing."""

from __future__ import annotations

import random
import re
import threading

import pytest
from prefect import flow

from tasks.errors import StorageNotFoundError, TrainingCancelled, TrainingFailed
from tasks.launch import CancelToken, run_training
from tasks.launch.launch_tasks import train_detectnet_v2
from tasks.launch.plan import RUN_LABEL
from tasks.launch.results import checkpoints
from tasks.storage import is_published, sync_down, sync_up
from tests.launch.harness import docker_harness
from tests.reliability import ledger
from tests.storage.helpers import access_for, location_of

pytestmark = pytest.mark.services

CRASH_TRIALS = 20
CANCEL_TRIALS = 10
EPOCHS = 4


def run_containers(client, run_id: str) -> list:
    return client.containers.list(all=True, filters={"label": f"{RUN_LABEL}={run_id}"})


def checkpoint_epochs(results) -> list[int]:
    return [int(re.search(r"(\d+)", p.name).group(1)) for p in checkpoints(results)]


def crash_case(seed: int) -> dict[str, str]:
    """A crash in a random epoch: a Python exception TAO records, or a hard one it cannot (a
    segfault); once (bad luck, the retry completes) or every time (the retry fails the same way)."""
    rng = random.Random(seed)
    knob = rng.choice(["TAO_STANDIN_FAIL_AT_EPOCH", "TAO_STANDIN_HARD_CRASH"])
    env = {knob: str(rng.randint(1, EPOCHS)), "TAO_STANDIN_EPOCH_SECONDS": "0.05"}
    if rng.random() < 0.6:
        env["TAO_STANDIN_FAIL_ONCE"] = "1"
    return env


def test_trainer_crashes_at_random_epochs_end_completed_or_typed(workdir, prefect_api, docker_client, standin_image):
    task = train_detectnet_v2.with_options(retry_delay_seconds=0)
    outcomes: list[dict] = []

    @flow(name="reliability-crash-trials")
    def trials():
        for seed in range(CRASH_TRIALS):
            harness = docker_harness(workdir / f"t{seed}", docker_client, standin_image)
            env = crash_case(seed)
            plan = harness.plan(epochs=EPOCHS)
            plan = plan.with_options(env=dict(plan.env, **env))
            outcome = {"seed": seed, "env": env, "run_id": plan.run_id, "results": plan.results_host_dir}
            try:
                result = task(plan, harness.launcher, artifact_prefix=f"crash-{seed}")
                outcome |= {"status": "completed", "epochs": [e.epoch for e in result.epochs],
                            "model": result.model_path}
            except TrainingFailed as exc:
                outcome |= {"status": "failed", "error": exc}
            except Exception as exc:  # noqa: BLE001 - counted as a crash of taoflow
                outcome |= {"status": "crashed", "error": exc}
            outcomes.append(outcome)

    trials()
    false_success = lost = crashed = completed = not_retried = 0
    for o in outcomes:
        results, env = o["results"], o["env"]
        starts = (results / "standin_starts.txt").read_text().split()
        ckpts = checkpoint_epochs(results)
        fail_at = int(env.get("TAO_STANDIN_FAIL_AT_EPOCH") or env["TAO_STANDIN_HARD_CRASH"])
        crashed += o["status"] == "crashed"
        if o["status"] == "completed":
            completed += 1
            # A success is real only if the trainer crashed once, resumed, and reached the last epoch.
            if not (env.get("TAO_STANDIN_FAIL_ONCE") and o["model"].is_file() and EPOCHS in ckpts
                    and len(starts) == 2 and starts[1] == f"started_from_epoch={fail_at - 1}"):
                false_success += 1
        elif o["status"] == "failed":
            assert o["error"].container_exit_code == 255, o  # TAO's wrapper: any failure is 255
            # A typed failure is right only after one retry that resumed and crashed the same way
            # at the same point; a third attempt would only repeat it.
            not_retried += (len(starts) != 2 or starts[1] != f"started_from_epoch={fail_at - 1}"
                            or bool(env.get("TAO_STANDIN_FAIL_ONCE")) or o["error"].transient)
        # Checkpoints are only ever added: every epoch the trainer finished has its checkpoint.
        finished = fail_at - 1 if o["status"] != "completed" else EPOCHS
        if ckpts != list(range(0, finished + 1)):
            lost += 1
        assert not run_containers(docker_client, o["run_id"]), "a container was left behind"
    assert (crashed, false_success, lost, not_retried) == (0, 0, 0, 0), outcomes
    ledger.record("trainer-crash", trials=len(outcomes), lost=lost, crashed=crashed + false_success + not_retried,
                  completed_after_resume=completed, failed_after_every_retry=len(outcomes) - completed)


def test_a_crash_in_the_first_epoch_is_retried(workdir, prefect_api, docker_client, standin_image):
    harness = docker_harness(workdir, docker_client, standin_image)
    plan = harness.plan(epochs=2)
    plan = plan.with_options(env=dict(plan.env, TAO_STANDIN_FAIL_AT_EPOCH="1", TAO_STANDIN_FAIL_ONCE="1",
                                      TAO_STANDIN_EPOCH_SECONDS="0.05"))

    @flow(name="reliability-first-epoch-crash")
    def once():
        return train_detectnet_v2.with_options(retry_delay_seconds=0)(plan, harness.launcher)

    assert once().model_path.is_file()


def test_cancelled_at_random_moments_leaves_no_container_and_no_partial_upload(
        workdir, docker_client, standin_image, azurite, blob_container):
    access = access_for(azurite)
    cancelled_training = cancelled_upload = 0
    for seed in range(CANCEL_TRIALS):
        rng = random.Random(1000 + seed)
        harness = docker_harness(workdir / f"c{seed}", docker_client, standin_image)
        plan = harness.plan(epochs=EPOCHS)
        plan = plan.with_options(env=dict(plan.env, TAO_STANDIN_EPOCH_SECONDS="0.3"))
        location = location_of(azurite, blob_container, f"models/c{seed}")
        token = CancelToken()
        during_training = seed % 2 == 0
        if during_training:
            threading.Timer(rng.uniform(0.2, 1.5), token.cancel, args=("test: cancelled",)).start()
        try:
            result = run_training(plan, harness.launcher, cancel=token)
        except TrainingCancelled as exc:
            assert "resume" in (exc.fix or "")
            cancelled_training += 1
            assert checkpoints(plan.results_host_dir), "a cancelled run keeps its checkpoints"
        else:
            assert not during_training or token.cancelled is False or result.model_path.is_file()
            # Cancel the publishing at a random file, as a flow cancellation interrupts the upload thread.
            for n in range(20):
                (result.results_dir / f"extra-{n}.bin").write_bytes(rng.randbytes(20_000))
            stop_at = rng.randint(1, 15)

            class Cancelled(Exception):
                pass

            def cancel_at(progress, stop_at=stop_at):
                if progress.files_done >= stop_at:
                    raise Cancelled()

            with pytest.raises(Cancelled):
                sync_up(result.results_dir, location, access=access, concurrency=2, on_progress=cancel_at)
            cancelled_upload += 1
        assert not run_containers(docker_client, plan.run_id), "a container was left behind"
        assert not is_published(location, access), "a partial upload is visible as published"
        with pytest.raises(StorageNotFoundError):
            sync_down(location, workdir / f"reader{seed}", access=access, require_published=True)
    ledger.record("cancel", trials=CANCEL_TRIALS, leaked=0, lost=0, crashed=0,
                  cancelled_in_training=cancelled_training, cancelled_in_publishing=cancelled_upload)
