"""A real `prefect server start` on a free loopback port (SQLite in a temp PREFECT_HOME).

The session's test harness server runs in-process settings; the deployment tests need a
server of their own that `prefect deploy`, `prefect work-pool create` and served flows (all
subprocesses) reach by PREFECT_API_URL, with the triggers service running.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.fixtures.offline import EgressRecorder, offline_env
from tests.fixtures.services import free_port, service_missing

REPO = Path(__file__).resolve().parents[2]
PREFECT = str(Path(sys.executable).with_name("prefect"))
#: A migrated, empty database, copied from the session's first server right after it answered:
#: later servers start on a copy and skip Prefect's migrations (~5 s of each start on 2 cores).
_MIGRATED: list[Path] = []


def stop_process(process: subprocess.Popen, grace: float = 30) -> None:
    """SIGTERM (servers and runners shut down cleanly on it), SIGKILL after `grace` seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@dataclass
class PrefectServer:
    home: Path
    port: int
    process: subprocess.Popen | None = None
    #: Serve the UI too (the browser test of the artifact pictures); the API tests leave it off.
    ui: bool = False
    #: Settings of the server process itself (e.g. how often its repossessor looks for expired leases).
    server_env: dict[str, str] = field(default_factory=dict)
    #: Send the server's and its clients' outbound HTTP through this recorder (loopback direct).
    egress: EgressRecorder | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a client subprocess of this server (no developer profile leaks in)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        env |= {
            "PREFECT_HOME": str(self.home),
            "PREFECT_PROFILES_PATH": str(self.home / "profiles.toml"),
            "PREFECT_API_URL": self.api_url,
            "PREFECT_UI_ENABLED": "true" if self.ui else "false",
        }
        # Analytics off exactly as docs/deploy.md starts the server: the same file.
        env |= offline_env()
        if self.egress is not None:
            env |= self.egress.proxy_env()
        return env | extra

    def start(self, timeout: float = 120.0) -> None:
        database = self.home / "prefect.db"
        if _MIGRATED and not database.exists():
            shutil.copyfile(_MIGRATED[0], database)
        log = open(self.home / "server.log", "ab")
        self.process = subprocess.Popen(
            [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(self.port)],
            env=self.env(**self.server_env), stdout=log, stderr=subprocess.STDOUT, cwd=self.home,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"prefect server exited: {(self.home / 'server.log').read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.api_url}/health", timeout=2).status_code == 200:
                    if not _MIGRATED:
                        _MIGRATED.append(_copy_of(database))
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError("prefect server did not answer /api/health in time")

    def stop(self) -> None:
        if self.process:
            stop_process(self.process, grace=20)

    def prefect(self, *args: str, timeout: float = 180, **env: str) -> subprocess.CompletedProcess:
        """Run the `prefect` CLI against this server from the repository root."""
        return subprocess.run([PREFECT, *args], env=self.env(**env), cwd=REPO, capture_output=True,
                              text=True, timeout=timeout)

    def post(self, path: str, body: dict | None = None) -> httpx.Response:
        return self._call("POST", path, json=body or {})

    def get(self, path: str) -> dict:
        return self._call("GET", path).json()

    def _call(self, method: str, path: str, **kw) -> httpx.Response:
        # SQLite behind a busy server answers 503 now and then ("database is locked"): the
        # server's own clients retry those, and so do we.
        for attempt in range(6):
            answer = httpx.request(method, f"{self.api_url}{path}", timeout=20, **kw)
            if answer.status_code not in (502, 503, 504) or attempt == 5:
                break
            time.sleep(0.5 * 2**attempt)
        answer.raise_for_status()
        return answer

    def flow_runs(self, deployment_id: str) -> list[dict]:
        return self.post("/flow_runs/filter", {"deployments": {"id": {"any_": [deployment_id]}}}).json()


TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def closed_port() -> int:
    """A loopback port nothing listens on (an unreachable storage endpoint, registry, ...)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_deployment(server: PrefectServer, deployment: str, request: dict,
                   job_variables: dict | None = None) -> str:
    """`prefect deployment run` as an operator types it; returns the flow run id."""
    options = [f"--job-variable={key}={json.dumps(value)}" for key, value in (job_variables or {}).items()]
    done = server.prefect("deployment", "run", deployment, "--params", json.dumps({"request": request}), *options,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    [run_id] = [line.split()[-1] for line in done.stdout.splitlines() if "UUID" in line]
    return run_id


def wait_terminal(server: PrefectServer, run_id: str, timeout: float = 600) -> tuple[dict, float]:
    started = time.monotonic()
    run = server.get(f"/flow_runs/{run_id}")
    while run["state_type"] not in TERMINAL and time.monotonic() - started < timeout:
        time.sleep(1)
        run = server.get(f"/flow_runs/{run_id}")
    return run, time.monotonic() - started


def run_logs(server: PrefectServer, run_id: str, settle: float = 3) -> list[str]:
    time.sleep(settle)  # log batches reach the API shortly after the run ends
    return [entry["message"] for entry in server.post(
        "/logs/filter", {"logs": {"flow_run_id": {"any_": [run_id]}}, "limit": 200}).json()]


def deploy_as_an_operator(server: PrefectServer) -> None:
    """`python -m deployments.pools --create`, then `prefect deploy --all`, as an operator types them."""
    pools = subprocess.run([sys.executable, "-m", "deployments.pools", "--create"], env=server.env(), cwd=REPO,
                           capture_output=True, text=True, timeout=300)
    assert pools.returncode == 0, pools.stdout + pools.stderr
    deployed = server.prefect("--no-prompt", "deploy", "--all", timeout=300)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr


@contextmanager
def running_worker(server: PrefectServer, home: Path, pool: str, *options: str, **env: str):
    """`prefect worker start --pool POOL [OPTIONS]` in `home`, its output in the yielded log file;
    stopped on leaving (SIGTERM: its last log batches reach the API)."""
    log_path = home / "worker.log"
    log = open(log_path, "ab")
    worker = subprocess.Popen([PREFECT, "worker", "start", "--pool", pool, *options],
                              env=server.env(**{"PREFECT_WORKER_QUERY_SECONDS": "2", **env}), cwd=home, stdout=log,
                              stderr=subprocess.STDOUT)
    try:
        yield log_path
    finally:
        stop_process(worker)
        log.close()


def _copy_of(database: Path) -> Path:
    """A consistent copy of a live SQLite database (the backup API, not a file copy: WAL mode)."""
    copy = Path(tempfile.mkdtemp(prefix="taoflow-prefect-db-")) / "prefect.db"
    with closing(sqlite3.connect(database)) as source, closing(sqlite3.connect(copy)) as target:
        source.backup(target)
    return copy


def serve_train_flow(prefect_server: "PrefectServer", name: str, log,
                     entrypoint: str = "flows/train.py:train_detectnet_v2", **env) -> subprocess.Popen:
    """`flow.serve` of the training flow (or the deployments' entry to it, flows/deployment.py) in its
    own process, returned once the deployment exists."""
    # Loaded from its entrypoint, as a worker's `prefect flow-run execute` loads it.
    code = (f"from prefect import Flow; Flow.from_source({str(REPO)!r}, {entrypoint!r})"
            f".serve(name={name!r}, limit=4)")
    served = subprocess.Popen([sys.executable, "-c", code], env=prefect_server.env(**env), cwd=REPO,
                              stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and served.poll() is None:
        if httpx.get(f"{prefect_server.api_url}/deployments/name/train-detectnet-v2/{name}").status_code == 200:
            return served
        time.sleep(0.5)
    stop_process(served)
    raise AssertionError(f"the served deployment {name} did not appear")


@contextmanager
def running_server(home: Path, *, ui: bool = False, egress: EgressRecorder | None = None, **server_env: str):
    """A started `PrefectServer` for a block (a failed start is a missing service), stopped after."""
    server = PrefectServer(home=home, port=free_port(), ui=ui, egress=egress, server_env=server_env)
    try:
        server.start()
    except (RuntimeError, OSError) as exc:
        server.stop()
        service_missing(f"prefect server start failed: {exc}")
    try:
        yield server
    finally:
        server.stop()
