"""Real Prefect cancellation: a served training flow run cancelled through the API at random moments.

The runner answers a cancel with SIGTERM to the flow process; the flow's `finally` and the
launcher's supervision stop the container, and the `on_cancellation` hook (in the runner's
process) reaps anything left by its run label. The results must be published completely or not
at all: a reader never sees a half-published model.
"""

from __future__ import annotations

import json
import random
import shutil
import time

import pytest

from tasks.registry import read_champion
from tasks.storage import is_published
from tests.deployments.server import PrefectServer, running_server, serve_train_flow, stop_process
from tests.flow.conftest import request_fields
from tests.launch.harness import host_memlock_limit
from tests.reliability import ledger

pytestmark = [pytest.mark.services, pytest.mark.slow]

TRIALS = 10
RUN_LABEL = "org.taoflow.run-id"
TERMINAL = {"CANCELLED", "COMPLETED", "FAILED", "CRASHED"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("cancel-server")) as srv:
        yield srv


def _flow_run(server: PrefectServer, run_id: str) -> dict:
    return server.get(f"/flow_runs/{run_id}")


def _wait(server: PrefectServer, run_id: str, states: set[str], timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    run = _flow_run(server, run_id)
    while run["state_type"] not in states and time.monotonic() < deadline:
        time.sleep(0.2)
        run = _flow_run(server, run_id)
    return run


def test_cancelling_served_runs_leaves_no_container_and_no_partial_model(
        server, demo_data, azurite_env, blob_container, docker_client, standin_image, tmp_path):
    mounts = tmp_path / "tao_mounts.json"
    mounts.write_text(json.dumps({"Mounts": [], "Envs": [{"variable": "TAO_STANDIN_EPOCH_SECONDS", "value": "0.4"}],
                                  "DockerOptions": {"ulimits": {"memlock": host_memlock_limit(), "stack": 67108864}}}))
    log = open(tmp_path / "served.log", "ab")
    served = serve_train_flow(
        server, "cancel-trials", log, TAOFLOW_HOME=str(tmp_path / "home"), TAOFLOW_DOCKER_NETWORK="none",
        LAUNCHER_MOUNTS=str(mounts), AZURE_STORAGE_CONNECTION_STRING=azurite_env.connection_string,
        PREFECT_RUNNER_POLL_FREQUENCY="1",
    )
    deployment = server.get("/deployments/name/train-detectnet-v2/cancel-trials")
    output = f"{azurite_env.blob_endpoint}/{blob_container.container_name}/models"
    outcomes: list[dict] = []
    try:
        for seed in range(TRIALS):
            rng = random.Random(4242 + seed)
            tfrecords = tmp_path / f"tfr-{seed}"
            tfrecords.mkdir()
            # Each trial its own training (the same inputs would reuse the first one's training:
            # docs/chain.md, "Caching"), so the cancel lands anywhere from staging to publishing.
            fields = request_fields(demo_data, tfrecords=str(tfrecords), output=output, image=standin_image,
                                    num_epochs=12, model_subfolder=f"cancel-{seed}",
                                    spec_overrides={"random_seed": str(seed + 1)})
            created = server.post(f"/deployments/{deployment['id']}/create_flow_run",
                                  {"parameters": {"request": fields}}).json()
            run_id = created["id"]
            assert _wait(server, run_id, {"RUNNING"} | TERMINAL, 60)["state_type"] == "RUNNING"
            time.sleep(rng.uniform(0.5, 6.5))  # from staging through training to publishing
            # What `prefect flow-run cancel` does: no force, so a run that already finished stays finished.
            server.post(f"/flow_runs/{run_id}/set_state", {"state": {"type": "CANCELLING", "name": "Cancelling"}})
            final = _wait(server, run_id, TERMINAL, 60)
            time.sleep(1.0)  # the hook runs in the runner after the state change
            left = docker_client.containers.list(all=True, filters={"label": f"{RUN_LABEL}={run_id}"})
            left += docker_client.containers.list(all=True, filters={"label": f"{RUN_LABEL}={run_id}-convert"})
            location = f"{output}/shapes/cancel-{seed}"
            published = is_published(location)
            outcomes.append({"seed": seed, "state": final["state_type"], "containers": len(left),
                             "published": published})
            shutil.rmtree(tfrecords, ignore_errors=True)
    finally:
        stop_process(served)
        log.close()
    lost = sum(o["state"] == "COMPLETED" and not o["published"] for o in outcomes)
    crashed = sum(o["state"] not in {"CANCELLED", "COMPLETED"} for o in outcomes)
    orphans = sum(o["containers"] for o in outcomes)
    # A cancel that lands after the version's marker was written (publishing and promotion are the
    # run's last steps) cannot take the publication back: the runner ends the run Cancelled, and the
    # version is complete. What must never be seen is a champion pointer naming an incomplete version.
    champion = read_champion(f"{output}/shapes")
    dangling = int(champion is not None and not is_published(f"{output}/shapes/{champion.version}"))
    ledger.record("prefect-cancel", trials=len(outcomes), lost=lost, leaked=dangling + orphans, crashed=crashed,
                  cancelled=sum(o["state"] == "CANCELLED" and not o["published"] for o in outcomes),
                  cancelled_after_publishing=sum(o["state"] == "CANCELLED" and o["published"] for o in outcomes),
                  completed_before_the_cancel=sum(o["state"] == "COMPLETED" for o in outcomes),
                  containers_left=orphans)
    assert (lost, dangling, crashed, orphans) == (0, 0, 0, 0), (outcomes, champion)
    assert sum(o["state"] == "CANCELLED" for o in outcomes) >= TRIALS // 2, outcomes
    print(f"\ncancel outcomes: {outcomes}")
