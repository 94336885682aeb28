"""An operator's first day (issue 16), as the operator runs it, every command a real subprocess:
`prefect server start` (loopback, SQLite), `python -m deployments.pools --create`,
`prefect deploy --all`, `prefect worker start --pool gpu-process`, then

(a) `prefect deployment run` of retrain-detectnet-v2 with local data and the stand-in image: the
    worker runs it to Completed and the model is published;
(b) the same with a missing credentials block, and with unreachable storage: Failed with one clean
    message and no traceback in the run's logs (read back through the API);
(c) no run of any deployment fails in the first 3 minutes after the fresh deploy.
"""

from __future__ import annotations

import time

import pytest

from tests.deployments.server import (
    REPO,
    closed_port,
    deploy_as_an_operator,
    run_deployment,
    run_logs,
    running_server,
    running_worker,
    wait_terminal,
)
from tests.flow.conftest import request_fields

pytestmark = [pytest.mark.services, pytest.mark.slow]

RETRAIN = "train-detectnet-v2/retrain-detectnet-v2"
QUIET_MINUTES = 3


@pytest.fixture(scope="session")
def first_day(tmp_path_factory):
    """A fresh server, pools and deployments, and a process worker; yields what the tests need.

    Session-scoped: the quiet-window check runs after the rest of the suite and needs this very
    server and worker, still running since the deploy."""
    home = tmp_path_factory.mktemp("operator")
    unreachable = f"http://127.0.0.1:{closed_port()}/devstoreaccount1"
    (home / "prefect").mkdir()
    with running_server(home / "prefect") as server:
        deploy_as_an_operator(server)
        deployed_at = time.monotonic()
        with running_worker(
            server, home, "gpu-process",
            TAOFLOW_PROJECT_DIR=str(REPO), TAOFLOW_HOME=str(home / "taoflow"), TAOFLOW_DOCKER_NETWORK="none",
            # The worker machine's storage: an endpoint nothing listens on, for case (b).
            AZURE_STORAGE_CONNECTION_STRING=(
                "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
                f"BlobEndpoint={unreachable};"),
        ) as worker_log:
            yield {"server": server, "home": home, "deployed_at": deployed_at, "unreachable": unreachable,
                   "worker_log": worker_log}


def local_request(demo_data, tmp_path, image: str, **extra) -> dict:
    tfrecords = tmp_path / "tfrecords"
    tfrecords.mkdir(exist_ok=True)
    fields = request_fields(demo_data, tfrecords=str(tfrecords), output=str(tmp_path / "out"), image=image,
                            key_block=None, storage_credentials=None)
    fields.update(extra)
    return fields


def test_a_worker_trains_a_deployment_run_end_to_end(first_day, demo_data, engine_env, tmp_path):
    image = engine_env()
    server = first_day["server"]
    run_id = run_deployment(server, RETRAIN, local_request(demo_data, tmp_path, image))
    run, seconds = wait_terminal(server, run_id)
    assert run["state_type"] == "COMPLETED", (run["state"], first_day["worker_log"].read_text()[-3000:])
    assert (tmp_path / "out" / "shapes" / "run-1" / "weights" / "shapes_detector.hdf5").is_file()
    print(f"\n(a) deployment run trained and published in {seconds:.0f} s")


@pytest.mark.parametrize("case", ["missing credentials block", "unreachable storage"])
def test_a_misconfigured_run_fails_with_one_clean_message(first_day, demo_data, engine_env, tmp_path, case):
    image = engine_env()
    server = first_day["server"]
    if case == "missing credentials block":
        request = local_request(demo_data, tmp_path, image, storage_credentials="no-such-block",
                                output="az://models/out")
        expected = "no-such-block"
    else:
        request = local_request(demo_data, tmp_path, image, output=f"{first_day['unreachable']}/models")
        expected = "cannot reach the storage endpoint"
    run_id = run_deployment(server, RETRAIN, request)
    run, seconds = wait_terminal(server, run_id)
    assert run["state_type"] == "FAILED", run["state"]
    assert expected in run["state"]["message"] and "how to fix" in run["state"]["message"]
    messages = run_logs(server, run_id)
    assert not any("Traceback" in m for m in messages), messages
    carrying = [m for m in messages if expected in m]
    assert len(carrying) == 1, carrying
    print(f"\n(b) {case}: Failed {seconds:.1f} s after the run was created")


@pytest.mark.after_the_rest
def test_no_run_fails_in_the_first_minutes_after_a_fresh_deploy(first_day):
    """Runs of this module's own cases aside, nothing ran, and so nothing failed, while the worker
    polled: the schedules that need configuration are inactive."""
    server = first_day["server"]
    wait = QUIET_MINUTES * 60 - (time.monotonic() - first_day["deployed_at"])
    if wait > 0:
        time.sleep(wait)
    runs = server.post("/flow_runs/filter", {}).json()
    ours = {"retrain-detectnet-v2"}
    deployments = {d["id"]: d["name"] for d in server.post("/deployments/filter", {}).json()}
    others = [r for r in runs if deployments.get(r["deployment_id"]) not in ours]
    assert others == [], [(deployments.get(r["deployment_id"]), r["state_type"]) for r in others]
    failed_unexpectedly = [r for r in runs if r["state_type"] in {"FAILED", "CRASHED"}
                           and "no-such-block" not in r["state"]["message"]
                           and "cannot reach the storage endpoint" not in r["state"]["message"]]
    assert failed_unexpectedly == [], [r["state"] for r in failed_unexpectedly]
