"""No secret leaks: the whole flow (Azurite + dockerd + stand-in TAO + Prefect API) runs with a
recognisable TAO key, a SAS token in a location URL and a connection string in the environment;
then every log line, artifact, flow-run parameter view, error text, written file and the
container's environment is searched for them.

The same scan covers deployment runs through a real `prefect server start` (hostile runs with a
key or SAS in their parameters, then a full training run with the key in a Secret block), and a
run whose SAS location fails with Azure SDK errors that quote the request URL."""

from __future__ import annotations

import json
import os
import re
import threading
import time
import urllib.parse
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowRunFilter,
    FlowRunFilterId,
    LogFilter,
    LogFilterFlowRunId,
)

from flows.train import train_detectnet_v2
from tasks.errors import TaoflowError
from tasks.job.request import TrainRequest
from tasks.launch.plan import JOB_LABEL
from tasks.redact import MASK
from tasks.storage import is_published, sync_down
from tests.deployments.server import running_server, serve_train_flow, stop_process
from tests.fixtures.services import AZURITE_ACCOUNT, AZURITE_KEY, prefect_api_at
from tests.flow.conftest import demo_data, engine_env, request_fields  # noqa: F401 - fixtures
from tests.flow.test_flow_azure import (
    blob_dataset,  # noqa: F401 - fixture
)
from tests.reliability import ledger

pytestmark = pytest.mark.services

KEY = "tlt-RELIABILITY-KEY-" + uuid.uuid4().hex
#: Findings of the flow test that the known-bug test below reports on.


def account_sas() -> str:
    from azure.storage.blob import AccountSasPermissions, ResourceTypes, generate_account_sas

    return generate_account_sas(
        AZURITE_ACCOUNT, AZURITE_KEY, ResourceTypes(service=True, container=True, object=True),
        AccountSasPermissions(read=True, list=True, write=True, create=True, add=True, delete=True),
        expiry=datetime.now(timezone.utc) + timedelta(hours=1),
    )


def needles(sas: str, connection_string: str) -> dict[str, str]:
    sig = urllib.parse.parse_qs(sas)["sig"][0]
    raw_sig = re.search(r"(?:^|&)sig=([^&]+)", sas).group(1)  # as it appears inside a URL
    return {"key": KEY, "sas signature": sig, "sas signature (in a URL)": raw_sig,
            "sas token": sas, "connection string": connection_string, "account key": AZURITE_KEY}


class Scanner:
    def __init__(self, secrets: dict[str, str]) -> None:
        self.secrets = secrets
        self.scanned: dict[str, int] = {}
        self.hits: list[str] = []

    def scan(self, kind: str, where: str, text: str) -> None:
        self.scanned[kind] = self.scanned.get(kind, 0) + 1
        self.hits += [f"{name} in {kind} {where}" for name, value in self.secrets.items() if value in text]

    def scan_tree(self, kind: str, root: Path) -> None:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            self.scan(kind, str(path), path.read_bytes().decode("utf-8", "replace"))
            self.scan(kind, "(its name)", str(path))


def watch_containers(client, seen: dict, stop: threading.Event) -> threading.Thread:
    def loop():
        while not stop.is_set():
            for c in client.containers.list(filters={"label": JOB_LABEL}):
                seen.setdefault(c.id, c.attrs)
            time.sleep(0.05)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


def test_no_secret_in_logs_artifacts_parameters_errors_files_or_container_env(
        prefect_api, engine_env, azurite_env, blob_dataset, blob_container, docker_client):  # noqa: F811
    image = engine_env({"TAO_STANDIN_EPOCH_SECONDS": "0.3"})
    sas = account_sas()
    connection_string = azurite_env.connection_string
    base = blob_dataset
    fields = request_fields(base, tfrecords=f"{base}/tfrecords/shapes", output=f"{base}/models", image=image,
                            key=KEY, model_subfolder=f"run-{uuid.uuid4().hex[:6]}")
    fields["spec"] = f"{base}/specs/train.txt"
    fields["training_data"]["location"] = f"{base}/data/shapes?{sas}"  # this input reads with the SAS
    scanner = Scanner(needles(sas, connection_string))

    seen: dict[str, dict] = {}
    stop = threading.Event()
    watcher = watch_containers(docker_client, seen, stop)
    try:
        state = train_detectnet_v2(TrainRequest(**fields), return_state=True)
    finally:
        stop.set()
        watcher.join(5)
    assert state.is_completed(), state.message
    run_id = state.state_details.flow_run_id

    with get_client(sync_client=True) as client:
        time.sleep(3)  # logs travel to the API in batches
        for log in client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id]))):
            scanner.scan("log line", log.name, log.message)
        for art in client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]))):
            scanner.scan("artifact", art.key or str(art.id), json.dumps(art.data, default=str) + str(art.description))
        flow_run = client.read_flow_run(run_id)
        scanner.scan("flow-run view", "parameters", json.dumps(flow_run.parameters, default=str))
        scanner.scan("flow-run view", "state", f"{flow_run.state.name} {flow_run.state.message}")
        for task_run in client.read_task_runs():
            scanner.scan("task-run view", task_run.name, json.dumps(task_run.model_dump(mode="json"), default=str))
    scanner.scan("flow result", "JobResult", repr(state.result()))

    for name in (b.name for b in blob_container.list_blobs(name_starts_with="models/")):
        scanner.scan("published file", name, blob_container.download_blob(name).readall().decode("utf-8", "replace"))
    home = Path(os.environ["TAOFLOW_HOME"])
    scanner.scan_tree("run folder / cache file", home)

    assert seen, "no training container was observed while it ran"
    argv_has_key = False
    for attrs in seen.values():
        scanner.scan("container env", attrs["Name"], json.dumps(attrs["Config"]["Env"]))
        scanner.scan("container labels", attrs["Name"], json.dumps(attrs["Config"]["Labels"]))
        argv_has_key |= KEY in attrs["Config"]["Cmd"] or KEY in (attrs.get("Args") or [])

    # Error texts a user would see with these secrets in hand.
    bad = dict(fields, num_epochs=0, key=KEY)
    for attempt in (lambda: TrainRequest.parse(bad),
                    lambda: sync_down(f"{azurite_env.blob_endpoint}/no-such-container/x?{sas}", home / "nowhere"),
                    lambda: sync_down(f"{base}/data/shapes?{sas}"[:-6] + "AAAAAA", home / "nowhere2")):
        try:
            attempt()
        except TaoflowError as exc:
            scanner.scan("error text", type(exc).__name__, exc.render() + repr(exc))
        else:
            pytest.fail("the broken call succeeded")

    assert scanner.hits == [], scanner.hits
    # TAO 5 needs the key only for a .tlt model or a pre-5.0 checkpoint (tao-source-facts.md §2): the
    # demo's .hdf5 base model trains without it, so it is in no argv, no `docker inspect`, no `ps`.
    assert not argv_has_key, "the key reached the container's argv although TAO does not need it"
    assert sum(scanner.scanned.values()) > 100, scanner.scanned
    files = scanner.scanned.get("published file", 0) + scanner.scanned.get("run folder / cache file", 0)
    ledger.record("secrets", trials=len(scanner.secrets), leaked=len(scanner.hits),
                  texts_scanned=sum(scanner.scanned.values()), log_lines=scanner.scanned.get("log line", 0),
                  artifacts=scanner.scanned.get("artifact", 0), files=files, containers_inspected=len(seen),
                  key_visible_in="nowhere (not passed: TAO 5 and an .hdf5 base model need no -k)")


# --- deployment runs through a real `prefect server start` (issue 15, item 5) ----------------

HOSTILE_KEY = "tlt-HOSTILE-" + uuid.uuid4().hex
SHORT_KEY = "Zq" + uuid.uuid4().hex[:4]  # below redact.SHORT_SECRET: masked as a whole token only
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("secrets-server")) as srv:
        yield srv


def _wait_terminal(server, run_id: str, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    run = server.get(f"/flow_runs/{run_id}")
    while run["state_type"] not in TERMINAL and time.monotonic() < deadline:
        time.sleep(1)
        run = server.get(f"/flow_runs/{run_id}")
    return run


def _create(url: str, body: dict) -> httpx.Response:
    """POST a flow run; a busy SQLite-backed server answers 503 now and then, which is retried."""
    for attempt in range(6):
        answer = httpx.post(url, json=body, timeout=30)
        if answer.status_code not in (502, 503, 504):
            break
        time.sleep(0.5 * 2**attempt)
    assert answer.status_code in (201, 409), answer.text
    return answer


def _all_events(server) -> list[dict]:
    page = server.post("/events/filter", {"limit": 50}).json()
    events = list(page["events"])
    while page.get("next_page"):
        page = httpx.get(page["next_page"], timeout=20).json()
        events += page["events"]
    return events


def test_deployment_runs_through_a_real_server_keep_no_secret(
        server, engine_env, azurite_env, blob_dataset, blob_container, docker_client, tmp_path):  # noqa: F811
    image = engine_env({"TAO_STANDIN_EPOCH_SECONDS": "0.3"})
    sas = account_sas()
    block = f"tao-key-{uuid.uuid4().hex[:8]}"
    with prefect_api_at(server.api_url):
        from prefect.blocks.system import Secret

        Secret(value=KEY).save(block)  # where the deployment's key lives: the Secret block
    served_log = tmp_path / "served.log"
    served_home = tmp_path / "served-home"
    log = open(served_log, "ab")
    # The worker's environment gives blob access; the parameters never do.
    served = serve_train_flow(server, "secrets", log, entrypoint="flows/deployment.py:retrain_detectnet_v2",
                              TAOFLOW_HOME=str(served_home), TAOFLOW_DOCKER_NETWORK="none",
                              LAUNCHER_MOUNTS=os.environ["LAUNCHER_MOUNTS"], PREFECT_RUNNER_POLL_FREQUENCY="1",
                              AZURE_STORAGE_CONNECTION_STRING=azurite_env.connection_string)
    deployment = server.get("/deployments/name/train-detectnet-v2/secrets")
    base = blob_dataset
    subfolder = f"deployed-{uuid.uuid4().hex[:6]}"
    fields = request_fields(base, tfrecords=f"{base}/tfrecords/shapes", output=f"{base}/models", image=image,
                            key_block=block, model_subfolder=subfolder)
    fields["spec"] = f"{base}/specs/train.txt"
    with_sas = json.loads(json.dumps(fields))
    with_sas["training_data"]["location"] += f"?{sas}"
    no_block = {k: v for k, v in fields.items() if k != "key_block"}
    off = {"enforce_parameter_schema": False}  # an API caller turning the server's check off for one run
    refused_cases = {
        "key in the request": {"parameters": {"request": no_block | {"key": HOSTILE_KEY}}},
        "short key in the request": {"parameters": {"request": no_block | {"key": SHORT_KEY}}},
        "SAS in a location": {"parameters": {"request": with_sas}},
    }
    stored_cases = {
        "key as a top-level parameter": {"parameters": {"request": fields, "key": HOSTILE_KEY}},
        "schema check off, key": {"parameters": {"request": no_block | {"key": HOSTILE_KEY}}, **off},
        "schema check off, short key": {"parameters": {"request": no_block | {"key": SHORT_KEY}}, **off},
        "schema check off, SAS": {"parameters": {"request": with_sas}, **off},
    }
    url = f"{server.api_url}/deployments/{deployment['id']}/create_flow_run"
    seen: dict[str, dict] = {}
    stop = threading.Event()
    watcher = watch_containers(docker_client, seen, stop)
    try:
        refusals = {case: _create(url, body) for case, body in refused_cases.items()}
        started = {case: _create(url, body).json()["id"] for case, body in stored_cases.items()}
        full = _create(url, {"parameters": {"request": fields}}).json()["id"]
        finals = {case: _wait_terminal(server, run_id) for case, run_id in started.items()}
        full_run = _wait_terminal(server, full, timeout=600)
        time.sleep(4)  # failure hooks, log batches and the event persister settle
    finally:
        stop.set()
        watcher.join(5)
        stop_process(served)
        log.close()

    for case, answer in refusals.items():
        assert answer.status_code == 409, (case, answer.text)
    assert "Secret block" in refusals["key in the request"].json()["detail"]
    assert full_run["state_type"] == "COMPLETED", full_run["state"]
    assert is_published(f"{base}/models/shapes/{subfolder}")
    masked = 0
    for case, run in finals.items():
        stored = server.get(f"/flow_runs/{run['id']}")
        assert run["state_type"] in {"FAILED", "CRASHED"}, (case, run["state"])
        if case.startswith("schema check off"):  # the flow itself refused it at once, with the advice
            assert run["state_type"] == "FAILED" and "how to fix" in run["state"]["message"], run["state"]
        flat = json.dumps(stored["parameters"])
        assert MASK in flat, (case, flat)
        masked += 1

    scanner = Scanner(needles(sas, azurite_env.connection_string) | {"hostile key": HOSTILE_KEY,
                                                                     "short key": SHORT_KEY})
    run_ids = [*started.values(), full]
    for run_id in run_ids:
        scanner.scan("flow run (parameters, state)", run_id, json.dumps(server.get(f"/flow_runs/{run_id}")))
    for entry in server.post("/logs/filter", {"logs": {"flow_run_id": {"any_": run_ids}}, "limit": 200}).json():
        scanner.scan("log line", entry["name"], entry["message"])
    for offset in range(200, 20_000, 200):
        more = server.post("/logs/filter", {"logs": {"flow_run_id": {"any_": run_ids}}, "limit": 200,
                                            "offset": offset}).json()
        for entry in more:
            scanner.scan("log line", entry["name"], entry["message"])
        if len(more) < 200:
            break
    for task_run in server.post("/task_runs/filter", {"flow_runs": {"id": {"any_": run_ids}}}).json():
        scanner.scan("task run (state)", task_run["name"], json.dumps(task_run))
    for artifact in server.post("/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": run_ids}}}).json():
        scanner.scan("artifact", artifact.get("key") or artifact["id"], json.dumps(artifact))
    for event in _all_events(server):
        scanner.scan("event", event["event"], json.dumps(event))
    scanner.scan("server log", "server.log", (server.home / "server.log").read_text(errors="replace"))
    scanner.scan("runner and flow console", "served.log", served_log.read_text(errors="replace"))
    for name in (b.name for b in blob_container.list_blobs(name_starts_with=f"models/shapes/{subfolder}/")):
        scanner.scan("published file", name, blob_container.download_blob(name).readall().decode("utf-8", "replace"))
    scanner.scan_tree("run folder / cache file", served_home)
    for attrs in seen.values():
        scanner.scan("container env", attrs["Name"], json.dumps(attrs["Config"]["Env"]))
        scanner.scan("container labels", attrs["Name"], json.dumps(attrs["Config"]["Labels"]))

    assert scanner.hits == [], scanner.hits
    assert seen and scanner.scanned.get("log line", 0) > 50 and scanner.scanned.get("event", 0) > 20, scanner.scanned
    ledger.record("deployment-secrets", trials=len(refused_cases) + len(stored_cases) + 1, leaked=len(scanner.hits),
                  refused_by_the_server=len(refusals), masked_after_start=masked,
                  texts_scanned=sum(scanner.scanned.values()), log_lines=scanner.scanned.get("log line", 0),
                  events=scanner.scanned.get("event", 0), artifacts=scanner.scanned.get("artifact", 0))


# --- Azure SDK errors quoting the request URL (issue 15, item 5) -------------------------------


@pytest.mark.slow
def test_sdk_errors_of_a_sas_location_leave_no_signature_in_logs_or_states(
        prefect_api, engine_env, azurite, azurite_env, blob_dataset):  # noqa: F811
    """Azurite down when the training data is first read (validated in place, before staging): the
    transport's attempts fail with connection errors whose text quotes the request URL with its SAS;
    the step fails once (an unreachable endpoint is not retried again at the step level), its one clear
    line quotes the location masked, and the run ends Failed."""
    image = engine_env()
    sas = account_sas()
    base = blob_dataset
    fields = request_fields(base, tfrecords=f"{base}/tfrecords/shapes", output=f"{base}/models", image=image,
                            key=KEY, model_subfolder=f"sdk-{uuid.uuid4().hex[:6]}")
    fields["training_data"]["location"] = f"{base}/data/shapes?{sas}"  # the spec stays local: it stages first
    azurite.stop()
    try:
        state = train_detectnet_v2(TrainRequest(**fields), return_state=True)
    finally:
        azurite.start()
    assert state.is_failed(), state
    run_id = state.state_details.flow_run_id
    scanner = Scanner(needles(sas, azurite_env.connection_string))
    with get_client(sync_client=True) as client:
        time.sleep(3)  # logs travel to the API in batches
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])))
        for entry in logs:
            scanner.scan("log line", entry.name, entry.message)
        flow_run = client.read_flow_run(run_id)
        scanner.scan("flow-run view", "state", f"{flow_run.state.name} {flow_run.state.message}")
        scanner.scan("flow-run view", "parameters", json.dumps(flow_run.parameters, default=str))
        task_runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id])))
        for task_run in task_runs:
            scanner.scan("task-run view", task_run.name, json.dumps(task_run.model_dump(mode="json"), default=str))
        for art in client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]))):
            scanner.scan("artifact", art.key or str(art.id), json.dumps(art.data, default=str) + str(art.description))
    error = state.result(raise_on_failure=False)
    [staging] = [t for t in task_runs if t.state_type == "FAILED"]
    scanner.scan("error text", type(error).__name__, str(error) + repr(error))
    # The scenario did produce texts that quoted the URL: they show it with the signature masked.
    quoting = [entry.message for entry in logs if "sig=***" in entry.message or "<SAS redacted>" in entry.message]
    assert scanner.hits == [], scanner.hits
    assert staging.run_count == 1 and len(quoting) >= 1, [entry.message[:200] for entry in logs]
    # The trials are the transport's attempts, each an SDK error quoting the URL; the clean line counts them.
    attempts = max(int(n) for n in re.findall(r"\((\d+) attempt\(s\)", " ".join(quoting)))
    assert attempts > 1, quoting
    ledger.record("sdk-errors", trials=attempts, leaked=len(scanner.hits),
                  texts_scanned=sum(scanner.scanned.values()), log_lines=scanner.scanned.get("log line", 0),
                  lines_quoting_the_url=len(quoting))
