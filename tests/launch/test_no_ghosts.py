"""A job never outlives the flow process that owns its GPUs, and a GPU is never shared (real dockerd,
the stand-in trainer, real processes killed with SIGKILL):

- a flow process killed with `kill -9` while its trainer runs: its container (Docker launcher) or its
  process group (process launcher) is gone soon after, removed by the job's watchdog;
- whoever books a GPU first removes a container still labelled with it (it outlived its lease);
- out of GPU memory while another container used the same GPU is said so, and a retry may help.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tasks.errors import TrainingFailed
from tasks.launch import DockerLauncher, run_training
from tasks.launch.judge import SHARED_GPU_OUT_OF_MEMORY
from tasks.launch.plan import GPU_HOST_LABEL, GPUS_LABEL, RUN_LABEL
from tasks.launch.process import remember_group
from tasks.launch.results import prepare_results
from tests.launch.harness import Recorder, docker_harness, process_harness

pytestmark = pytest.mark.services
REPO = Path(__file__).resolve().parents[2]

#: A flow process, as far as its job is concerned: it launches a long training and waits.
FLOW = """
import json, sys
from tasks.launch import run_training
from tests.launch.harness import docker_harness, process_harness
kind, root, image, run_id = sys.argv[1:5]
if kind == "docker":
    import docker
    harness = docker_harness(__import__("pathlib").Path(root), docker.from_env(), image)
else:
    harness = process_harness(__import__("pathlib").Path(root))
plan = harness.plan(epochs=500, run_id=run_id, env={"TAO_STANDIN_EPOCH_SECONDS": "0.2"})
print(json.dumps({"results": str(plan.results_host_dir)}), flush=True)
run_training(plan, harness.launcher)
"""


def _wait(predicate, what: str, timeout: float = 120.0) -> None:
    """Liveness, not latency: fail only if `what` never happens."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout:.0f} s"
        time.sleep(0.2)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


@pytest.mark.parametrize("kind", ["docker", "process"])
def test_a_job_does_not_outlive_its_flow_process_killed_with_sigkill(kind, workdir, docker_client, standin_image):
    run_id = f"ghost-{uuid.uuid4().hex[:8]}"
    flow = subprocess.Popen([sys.executable, "-c", FLOW, kind, str(workdir), standin_image, run_id], cwd=REPO,
                            stdout=subprocess.PIPE, text=True)
    results = Path(json.loads(flow.stdout.readline())["results"])
    _wait(lambda: (results / "status.json").exists(), "the trainer's first status line")
    if kind == "docker":
        [container] = docker_client.containers.list(filters={"label": f"{RUN_LABEL}={run_id}"})
        assert container.status == "running"
    else:
        pgid = int(next(results.parent.glob(f".{results.name}.taoflow-train-group")).read_text().split()[0])
        assert _group_alive(pgid)
    flow.send_signal(signal.SIGKILL)
    flow.wait(30)
    if kind == "docker":
        _wait(lambda: not docker_client.containers.list(all=True, filters={"label": f"{RUN_LABEL}={run_id}"}),
              "the removal of the killed flow's container")
    else:
        _wait(lambda: not _group_alive(pgid), "the end of the killed flow's trainer process group")
    # It is gone for good, not restarting: the status file stops growing.
    size = (results / "status.json").stat().st_size
    time.sleep(1.0)
    assert (results / "status.json").stat().st_size == size


def test_whoever_books_a_gpu_first_removes_a_container_still_holding_it(docker_client, standin_image):
    host = f"host-{uuid.uuid4().hex[:6]}"
    labels = {GPU_HOST_LABEL: host, GPUS_LABEL: "0,1", RUN_LABEL: "a-run-that-lost-its-lease"}
    ghost = docker_client.containers.run(standin_image, ["sleep", "300"], detach=True, labels=labels, network_mode="none")
    other = docker_client.containers.run(standin_image, ["sleep", "300"], detach=True,
                                         labels={**labels, GPUS_LABEL: "2"}, network_mode="none")
    try:
        removed = DockerLauncher(client=docker_client).evict(host, (1,))
        assert removed == [f"container {ghost.name} of run a-run-that-lost-its-lease"]
        names = {c.name for c in docker_client.containers.list(all=True, filters={"label": f"{GPU_HOST_LABEL}={host}"})}
        assert names == {other.name}, "a container on another GPU of the host is left alone"
    finally:
        for container in (ghost, other):
            try:
                container.remove(force=True)
            except Exception:  # noqa: BLE001 - removed by the test already
                pass


def test_out_of_memory_on_a_shared_gpu_is_said_so_and_may_be_retried(workdir, docker_client, standin_image):
    neighbour = docker_client.containers.run(standin_image, ["sleep", "300"], detach=True, network_mode="none",
                                             environment={"NVIDIA_VISIBLE_DEVICES": "0"}, name=f"other-{uuid.uuid4().hex[:6]}")
    try:
        harness = docker_harness(workdir, docker_client, standin_image)
        harness.launcher = DockerLauncher(client=docker_client, policy=harness.launcher.policy, gpu_handover="env")
        plan = harness.plan(epochs=3, docker_gpus="auto", env={"TAO_STANDIN_OOM": "2", "TAO_STANDIN_EPOCH_SECONDS": "0.05"})
        with pytest.raises(TrainingFailed) as caught:
            run_training(harness.launcher.assign_gpus(plan, (0,)), harness.launcher)
        assert caught.value.reason == SHARED_GPU_OUT_OF_MEMORY and caught.value.transient
        assert f"container {neighbour.name}" in caught.value.what
        # Alone on its GPU, the same ending is the spec's doing: final, with the spec advice.
        harness = docker_harness(workdir / "alone", docker_client, standin_image)
        harness.launcher = DockerLauncher(client=docker_client, policy=harness.launcher.policy, gpu_handover="env")
        alone = harness.plan(epochs=3, docker_gpus="auto", run_id="alone",
                             env={"TAO_STANDIN_OOM": "2", "TAO_STANDIN_EPOCH_SECONDS": "0.05"})
        with pytest.raises(TrainingFailed) as caught:
            run_training(harness.launcher.assign_gpus(alone, (1,)), harness.launcher)
        assert caught.value.reason == "out of GPU memory" and not caught.value.transient
    finally:
        neighbour.remove(force=True)


def test_a_process_launcher_retry_ends_the_ghost_of_an_earlier_attempt(workdir):
    """The watchdog died with everything else (a whole-session kill): the next attempt of the same job
    finds the recorded process group still running beside its results folder and ends it first."""
    harness = process_harness(workdir)
    plan = harness.plan(epochs=500, run_id="same-run", env={"TAO_STANDIN_EPOCH_SECONDS": "0.2"})
    prepare_results(plan.results_host_dir, run_id="same-run")
    ghost = subprocess.Popen(harness.launcher.argv(plan), env=os.environ | dict(plan.env), start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    remember_group(plan, ghost.pid)  # what the killed attempt had recorded
    warnings: list[str] = []
    try:
        run_training(plan.with_options(env=dict(plan.env, TAO_STANDIN_EPOCH_SECONDS="0.01")), harness.launcher,
                     Recorder().observer(on_warning=warnings.append))
    except TrainingFailed:
        pass  # how the resumed attempt ends is not the point here
    assert ghost.wait(30) == -signal.SIGKILL
    assert any(f"killed process group {ghost.pid}" in w for w in warnings), warnings
