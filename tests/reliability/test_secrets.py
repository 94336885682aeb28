"""No secret leaks: the whole flow (Azurite + dockerd + stand-in TAO + Prefect API) runs with a
recognisable TAO key, a SAS token in a location URL and a connection string in the environment;
then every log line, artifact, flow-run parameter view, error text, written file and the
container's environment is searched for them."""

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

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, LogFilter, LogFilterFlowRunId

from flows.train import train_detectnet_v2
from tasks.errors import TaoflowError
from tasks.launch.plan import JOB_LABEL
from tasks.request import TrainRequest
from tasks.storage import sync_down
from tests.fixtures.services import AZURITE_ACCOUNT, AZURITE_KEY
from tests.flow.conftest import demo_data, engine_env, request_fields  # noqa: F401 - fixtures
from tests.flow.test_flow_azure import blob_dataset  # noqa: F401 - fixture
from tests.flow.test_flow_azure import TRAIN_SPEC
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
