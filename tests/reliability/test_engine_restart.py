"""The Docker engine restarted while a training job runs: a clear transient error, the container
reaped, and the retry resuming from the last checkpoint. The engine is restarted with the very
arguments it runs with, and is back before the test ends, even on failure."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
import traceback
from pathlib import Path

import pytest

from tasks.errors import EngineUnavailable, TrainingFailed
from tasks.launch import run_training
from tasks.launch.plan import RUN_LABEL
from tasks.launch.results import checkpoints
from tests.fixtures.services import service_missing
from tests.launch.harness import docker_harness
from tests.reliability import ledger
from tests.reliability.ledger import REPO

pytestmark = [pytest.mark.services, pytest.mark.slow, pytest.mark.exclusive]  # it restarts dockerd
#: What the restart test saw, for the known-bug test below.


def dockerd_process() -> tuple[int, list[str]] | None:
    rows = subprocess.run(["ps", "-o", "pid=,stat=", "-C", "dockerd"], capture_output=True, text=True).stdout
    # A zombie of an engine an earlier restart replaced is not an engine.
    live = [line.split()[0] for line in rows.splitlines() if line.split() and not line.split()[1].startswith("Z")]
    if len(live) != 1:
        return None
    pid = int(live[0])
    args = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
    return pid, [a.decode() for a in args]


def engine_answers(client) -> bool:
    try:
        return bool(client.ping())
    except Exception:  # noqa: BLE001
        return False


class Engine:
    """Stop and start dockerd ourselves; refuse (fail in CI) when it is not ours to restart."""

    def __init__(self, client) -> None:
        found = dockerd_process()
        if found is None:
            service_missing("no single dockerd process to restart (a remote engine or a system service)")
        self.pid, self.args = found
        ppid = int(Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        if os.geteuid() != 0 or Path(f"/proc/{ppid}/comm").read_text().strip() == "systemd":
            service_missing(f"dockerd (pid {self.pid}) is a system service this test may not restart")
        self.client = client

    def stop(self) -> None:
        os.kill(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + 60
        while Path(f"/proc/{self.pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)

    def start(self) -> None:
        if engine_answers(self.client):
            return
        log = open(REPO / ".cache" / "dockerd-restarted.log", "ab")
        process = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.pid = process.pid
        deadline = time.monotonic() + 90
        while not engine_answers(self.client):
            if time.monotonic() > deadline:
                raise RuntimeError("dockerd did not come back; see .cache/dockerd-restarted.log")
            time.sleep(0.25)


def test_engine_restart_mid_training_then_the_retry_resumes(workdir, docker_client, standin_image):
    (REPO / ".cache").mkdir(exist_ok=True)
    engine = Engine(docker_client)
    harness = docker_harness(workdir, docker_client, standin_image)
    plan = harness.plan(epochs=6)
    plan = plan.with_options(env=dict(plan.env, TAO_STANDIN_EPOCH_SECONDS="0.5"))
    results = plan.results_host_dir
    errors: list[BaseException] = []

    def first_attempt():
        try:
            run_training(plan, harness.launcher)
        except BaseException as exc:  # noqa: BLE001 - judged below
            errors.append(exc)

    runner = threading.Thread(target=first_attempt, daemon=True)
    try:
        runner.start()
        deadline = time.monotonic() + 60
        while len(checkpoints(results)) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(checkpoints(results)) >= 3, "training never reached epoch 2"
        engine.stop()
        runner.join(120)
    finally:
        engine.start()
    assert errors, "the first attempt did not fail although its engine went away"
    error = errors[0]
    before_retry = max(int(p.name.split("-")[1].split(".")[0]) for p in checkpoints(results))
    result = run_training(plan, harness.launcher)  # what the task's retry does
    left = docker_client.containers.list(all=True, filters={"label": f"{RUN_LABEL}={plan.run_id}"})
    starts = (results / "standin_starts.txt").read_text().split()
    assert starts == ["started_from_epoch=0", f"started_from_epoch={before_retry}"], starts
    assert result.model_path.is_file() and left == []
    # Depending on who is first, the engine's own SIGTERM ends the container (exit 143, judged a
    # resumable TrainingFailed) or the engine vanishes under our wait (EngineUnavailable): both
    # are typed, transient errors that the task's retry answers by resuming.
    typed = isinstance(error, (EngineUnavailable, TrainingFailed)) and error.transient
    ledger.record("dockerd-restart", trials=1, lost=0, crashed=0 if typed else 1, error=type(error).__name__,
                  resumed_from_epoch=before_retry, containers_left=len(left))
    assert typed, "".join(traceback.format_exception(error))
