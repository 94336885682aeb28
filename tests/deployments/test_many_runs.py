"""Many runs at once, as an operator's fleet runs them: a real `prefect server start`, the gpu-process
pool, the repository's retrain deployment (`prefect deploy`), TWO real process workers on one host
that declares 2 GPUs (TAOFLOW_GPUS=0,1; this engine has no NVIDIA runtime, so the GPUs are handed
over as NVIDIA_VISIBLE_DEVICES and the assignment is checked where it is made: each container's
labels and environment), and the stand-in trainer through dockerd.

(a) Six deployment runs submitted in the same second all end Completed, in six distinct version
    folders, each holding only its own run's card, weights and run id; the champion pointer names a
    version whose files are that version's; never more than two trainers at once (docker's event
    stream), never two containers on one GPU.
(b) A flow process killed with `kill -9` while its trainer runs: its container is gone (its watchdog),
    its GPU slot is freed when the lease runs out, and only then does the run waiting for that GPU
    start on it; the waiting run said in its log which run held the GPU.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

from tasks.launch.plan import GPU_HOST_LABEL, GPUS_LABEL, JOB_LABEL, RUN_LABEL
from tasks.registry import CARD_FILE, CLAIM_FILE
from tests.deployments.server import PREFECT, REPO, running_server, stop_process
from tests.flow.conftest import request_fields
from tests.launch.harness import host_memlock_limit

pytestmark = [pytest.mark.services, pytest.mark.slow]

RETRAIN = "train-detectnet-v2/retrain-detectnet-v2"
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


class EngineLog:
    """docker's event stream for the containers of one GPU host, with each container's environment
    read when it is created (the assignment, where it is made)."""

    def __init__(self, client, host: str) -> None:
        self.client, self.host = client, host
        self.events: list[dict] = []
        self.env: dict[str, dict[str, str]] = {}
        self._stream = client.events(decode=True, filters={"type": "container", "label": f"{GPU_HOST_LABEL}={host}"})
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for event in self._stream:
            self.events.append(event)
            if event.get("Action") == "create":
                try:
                    config = self.client.api.inspect_container(event["id"])["Config"]
                    self.env[event["id"]] = dict(e.split("=", 1) for e in config.get("Env") or [])
                except Exception:  # noqa: BLE001 - removed already: its labels still tell
                    pass

    def close(self) -> None:
        self._stream.close()

    def intervals(self, job: str | None = None) -> list[dict]:
        """One entry per container: its run, GPUs (labels), environment, start and end (ns)."""
        found: dict[str, dict] = {}
        for event in list(self.events):
            attrs = event["Actor"]["Attributes"]
            if job is not None and attrs.get(JOB_LABEL) != job:
                continue
            entry = found.setdefault(event["id"], {"id": event["id"], "run": attrs.get(RUN_LABEL),
                                                   "job": attrs.get(JOB_LABEL), "gpus": attrs.get(GPUS_LABEL)})
            if event["Action"] == "start":
                entry["start"] = event["timeNano"]
            elif event["Action"] == "die":
                entry["end"] = event["timeNano"]
        for entry in found.values():
            entry["env"] = self.env.get(entry["id"], {})
        return [e for e in found.values() if "start" in e]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory, docker_client, standin_image):
    home = tmp_path_factory.mktemp("fleet")
    host = f"gpu-host-{uuid.uuid4().hex[:6]}"
    (home / "prefect").mkdir()
    # The repossessor frees expired leases every second instead of every 15 (Prefect's default).
    with running_server(home / "prefect", PREFECT_SERVER_SERVICES_REPOSSESSOR_LOOP_SECONDS="1") as server:
        created = server.prefect("work-pool", "create", "gpu-process", "--type", "process", "--overwrite")
        assert created.returncode == 0, created.stdout + created.stderr
        deployed = server.prefect("--no-prompt", "deploy", "--name", "retrain-detectnet-v2", timeout=300)
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
        mounts = home / "tao_mounts.json"
        mounts.write_text(json.dumps({
            "Mounts": [], "Envs": [{"variable": "TAO_STANDIN_EPOCH_SECONDS", "value": "1.0"}],
            "DockerOptions": {"ulimits": {"memlock": host_memlock_limit(), "stack": 67108864}}}))
        engine = EngineLog(docker_client, host)
        workers, logs = [], []
        for number in range(2):
            logs.append(open(home / f"worker-{number}.log", "ab"))
            workers.append(subprocess.Popen(
                [PREFECT, "worker", "start", "--pool", "gpu-process", "--name", f"{host}-worker-{number}"],
                env=server.env(TAOFLOW_PROJECT_DIR=str(REPO), TAOFLOW_HOME=str(home / "taoflow"),
                               TAOFLOW_DOCKER_NETWORK="none", LAUNCHER_MOUNTS=str(mounts),
                               TAOFLOW_GPUS="0,1", TAOFLOW_GPU_HOST=host, TAOFLOW_GPU_HANDOVER="env",
                               PREFECT_WORKER_QUERY_SECONDS="1"),
                cwd=home, stdout=logs[-1], stderr=subprocess.STDOUT))
        try:
            yield {"server": server, "home": home, "host": host, "engine": engine, "image": standin_image,
                   "deployment": server.get(f"/deployments/name/{RETRAIN}")}
        finally:
            for worker in workers:
                stop_process(worker)
            for log in logs:
                log.close()
            engine.close()


def submit(fleet, request: dict) -> str:
    """A deployment run, created as `run_deployment` creates it (Prefect's client, its retries)."""
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.settings import PREFECT_CLIENT_MAX_RETRIES, temporary_settings

    # The fleet's server keeps its database in SQLite (docs/deploy.md: PostgreSQL for a real fleet).
    # Under load it answers "503, database is locked" for a while; a client, as Prefect's own do,
    # tries again with back-off: here for longer than the default five tries.
    with temporary_settings({PREFECT_CLIENT_MAX_RETRIES: 10}), SyncPrefectClient(fleet["server"].api_url) as client:
        run = client.create_flow_run_from_deployment(fleet["deployment"]["id"], parameters={"request": request})
    return str(run.id)


def wait_terminal(server, run_ids: list[str], timeout: float = 1200) -> dict[str, dict]:
    deadline = time.monotonic() + timeout
    while True:
        runs = {run_id: server.get(f"/flow_runs/{run_id}") for run_id in run_ids}
        if all(r["state_type"] in TERMINAL for r in runs.values()) or time.monotonic() > deadline:
            return runs
        time.sleep(2)


def failures(fleet, runs: dict[str, dict]) -> str:
    """What went wrong, in full: each run that did not complete, and the workers' last lines."""
    lines = [f"{run_id} {r['state_type']}: {r['state']['message']}" for run_id, r in runs.items()
             if r["state_type"] != "COMPLETED"]
    for log in sorted(fleet["home"].glob("worker-*.log")):
        lines.append(f"--- {log.name}\n" + log.read_text(errors="replace")[-3000:])
    return "\n".join(lines)


def run_logs(server, run_id: str) -> list[str]:
    return [entry["message"] for entry in server.post(
        "/logs/filter", {"logs": {"flow_run_id": {"any_": [run_id]}}, "limit": 200}).json()]


def most_at_once(intervals: list[dict]) -> int:
    edges = sorted([(i["start"], 1) for i in intervals] + [(i.get("end", 2**63), -1) for i in intervals],
                   key=lambda edge: (edge[0], edge[1]))
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak


def shared_gpus(intervals: list[dict]) -> list[tuple[dict, dict]]:
    clashes = []
    for n, a in enumerate(intervals):
        for b in intervals[n + 1:]:
            overlap = a["start"] < b.get("end", 2**63) and b["start"] < a.get("end", 2**63)
            if overlap and set(a["gpus"].split(",")) & set(b["gpus"].split(",")):
                clashes.append((a, b))
    return clashes


def test_six_runs_submitted_in_the_same_second_share_no_folder_and_no_gpu(fleet, demo_data, tmp_path):
    server = fleet["server"]
    output = tmp_path / "out"
    (tmp_path / "tfr").mkdir()
    request = request_fields(demo_data, tfrecords=str(tmp_path / "tfr"), output=str(output), image=fleet["image"],
                             model_subfolder="nightly", subfolder_per_run=True, docker_gpus="auto",
                             key_block=None, storage_credentials=None)
    go = threading.Barrier(6)
    run_ids: list[str] = []

    refused: list[BaseException] = []

    def press_run(seed: int) -> None:
        # Six different trainings (a run with the same inputs as another reuses its training instead:
        # docs/chain.md, "Caching"), all aimed at the same model_subfolder in the same second.
        go.wait()
        try:
            run_ids.append(submit(fleet, request | {"spec_overrides": {"random_seed": str(seed)}}))
        except Exception as exc:  # noqa: BLE001 - said below, not lost in a thread
            refused.append(exc)

    pressers = [threading.Thread(target=press_run, args=(seed,)) for seed in range(6)]
    for presser in pressers:
        presser.start()
    for presser in pressers:
        presser.join(300)
    assert refused == [] and len(run_ids) == 6, refused
    runs = wait_terminal(server, run_ids)
    assert [r["state_type"] for r in runs.values()] == ["COMPLETED"] * 6, failures(fleet, runs)
    assert {r["state"]["name"] for r in runs.values()} <= {"Promoted", "Not promoted"}

    app = output / "shapes"
    versions = sorted(p for p in app.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert len(versions) == 6, [v.name for v in versions]
    owners = {}
    for version in versions:
        card = json.loads((version / CARD_FILE).read_text())
        claim = json.loads((version / CLAIM_FILE).read_text())
        marker = (version / ".taoflow-run-id").read_text().strip()
        assert card["run_id"] == claim["run_id"] == marker, version.name
        assert card["version"] == version.name and version.name.endswith(marker.replace("-", "")[:8])
        assert (version / "weights" / "shapes_detector.hdf5").is_file()
        owners[version.name] = card["run_id"]
    assert sorted(owners.values()) == sorted(run_ids)
    champion = json.loads((app / "champion.json").read_text())
    champion_card = json.loads((app / champion["version"] / CARD_FILE).read_text())
    assert champion_card["run_id"] == champion["run_id"] == owners[champion["version"]]

    engine = fleet["engine"]
    trainers = [i for i in engine.intervals("train") if i["run"] in run_ids]
    everything = [i for i in engine.intervals() if (i["run"] or "").split("-evaluate")[0] in run_ids]
    assert len(trainers) == 6
    assert most_at_once(trainers) <= 2
    assert shared_gpus(everything) == []
    for container in everything:
        if container["env"]:  # read at creation; a fast evaluation may be gone before it is read
            assert container["env"].get("NVIDIA_VISIBLE_DEVICES") == container["gpus"], container
    print(f"\n6 runs: peak {most_at_once(trainers)} trainers, {len(everything)} GPU containers, "
          f"states {sorted(r['state']['name'] for r in runs.values())}")


def flow_processes(run_id: str) -> list[int]:
    """The processes running flow run `run_id`, not its jobs' watchdogs."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if f"PREFECT__FLOW_RUN_ID={run_id}".encode() in environ and b"tasks.launch.watchdog" not in cmdline:
            found.append(int(entry.name))
    return found


def test_a_killed_flows_gpu_goes_to_the_waiting_run_only_after_its_container_is_gone(fleet, demo_data, tmp_path):
    server, engine = fleet["server"], fleet["engine"]
    (tmp_path / "tfr").mkdir()
    base = request_fields(demo_data, tfrecords=str(tmp_path / "tfr"), output=str(tmp_path / "out"),
                          image=fleet["image"], gpu_index=[0], docker_gpus="auto", key_block=None,
                          storage_credentials=None)
    holder = submit(fleet, dict(base, model_subfolder="holder", num_epochs=300))
    deadline = time.monotonic() + 600
    while not [i for i in engine.intervals("train") if i["run"] == holder] and time.monotonic() < deadline:
        time.sleep(0.5)
    waiter = submit(fleet, dict(base, model_subfolder="waiter"))
    holder_name = server.get(f"/flow_runs/{holder}")["name"]
    said: list[str] = []
    while not any("waiting for GPU 0 of host" in m for m in said) and time.monotonic() < deadline:
        assert server.get(f"/flow_runs/{waiter}")["state_type"] not in TERMINAL, failures(
            fleet, {waiter: server.get(f"/flow_runs/{waiter}")})
        time.sleep(1)
        said = run_logs(server, waiter)
    assert any(f"GPU 0 held by flow run {holder_name!r}" in m for m in said), said

    killed_at = time.time_ns()
    pids = flow_processes(holder)
    assert pids, "the holder's flow process"
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    runs = wait_terminal(server, [holder, waiter])
    assert runs[waiter]["state_type"] == "COMPLETED", runs[waiter]["state"]
    assert runs[holder]["state_type"] in {"CRASHED", "FAILED"}, runs[holder]["state"]

    [held] = [i for i in engine.intervals("train") if i["run"] == holder]
    [took] = [i for i in engine.intervals("train") if i["run"] == waiter]
    assert "end" in held and held["end"] < took["start"], (held, took)
    assert held["gpus"] == took["gpus"] == "0"
    print(f"\nkill -9: container gone {(held['end'] - killed_at) / 1e9:.1f} s after the kill, the waiting run's "
          f"trainer started {(took['start'] - killed_at) / 1e9:.1f} s after it (lease 60 s)")
