"""`taoflow events serve` as an operator starts it: settings from the command line and the environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.deployments.server import stop_process
from tests.events.eventgrid import blob_created, delivery
from tests.fixtures.services import free_port, wait_for_port

TAOFLOW = str(Path(sys.executable).with_name("taoflow"))
AZURITE = "http://127.0.0.1:10000/devstoreaccount1"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAOFLOW_EVENTS_")}
    # Nothing is emitted here: a closed port stands in for the Prefect API.
    return env | {"PREFECT_API_URL": "http://127.0.0.1:9/api", "TAOFLOW_EVENTS_SECRET": "cli-secret"} | extra


@pytest.mark.services
def test_allow_list_and_endpoints_from_the_environment(tmp_path):
    port = free_port()
    env = _env(TAOFLOW_EVENTS_ALLOW="acct/datasets devstoreaccount1", TAOFLOW_EVENTS_ENDPOINTS=AZURITE)
    log = open(tmp_path / "serve.log", "wb")
    served = subprocess.Popen([TAOFLOW, "events", "serve", "--port", str(port), "--state-dir", str(tmp_path / "state"),
                               "--rule", "datasets/*"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        assert wait_for_port(port, 60), (tmp_path / "serve.log").read_text()
        url = f"http://127.0.0.1:{port}/eventgrid?code=cli-secret"
        allowed = [blob_created("acct", "datasets", "ds/1.png"),
                   blob_created("devstoreaccount1", "datasets", "ds/1.png", endpoint=AZURITE)]
        assert httpx.post(url, **delivery(allowed)).json()["accepted"] == 2
        assert httpx.post(url, **delivery([blob_created("acct", "logs", "ds/1.png")])).status_code == 403
        assert httpx.post(url, **delivery([blob_created("stranger", "datasets", "ds/1.png")])).status_code == 403
    finally:
        stop_process(served)
    assert "storage: acct/datasets, devstoreaccount1" in (tmp_path / "serve.log").read_text()


@pytest.mark.parametrize(("args", "env", "message"), [
    (["--allow", "Not_An_Account"], {}, "allow-list entry 'Not_An_Account'"),
    ([], {"TAOFLOW_EVENTS_ALLOW": "acct/UPPER"}, "allow-list entry 'acct/UPPER'"),
    ([], {"TAOFLOW_EVENTS_ENDPOINTS": "127.0.0.1:10000"}, "is not a blob account URL"),
])
def test_a_bad_allow_list_or_endpoint_is_one_message_and_exit_2(tmp_path, args, env, message):
    done = subprocess.run([TAOFLOW, "events", "serve", "--state-dir", str(tmp_path), *args], env=_env(**env),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
