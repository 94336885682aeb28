"""prefect.yaml against a real `prefect server start`: deploy, read back, and the dataset-ready
trigger fed by the real Event Grid bridge (uvicorn + SQLite store + HTTP emitter)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import uuid
from urllib.parse import quote

import httpx
import pytest

from tasks.events.origin import EventOrigins
from tasks.job.request import TrainRequest
from tests.events.bridge import SECRET, make_debouncer, running_bridge, wait_until
from tests.events.eventgrid import blob_created, dataset_burst, delivery

pytestmark = pytest.mark.services

RETRAIN = "retrain-detectnet-v2"


def test_deploy_all_creates_every_deployment(deployed):
    assert set(deployed) == {
        RETRAIN, f"{RETRAIN}-docker", f"{RETRAIN}-aks", f"{RETRAIN}-aci", "sweep-detectnet-v2", "watch-blob-datasets",
    }
    pools = {name: d["work_pool_name"] for name, d in deployed.items()}
    assert pools[RETRAIN] == "gpu-process" and pools[f"{RETRAIN}-docker"] == "gpu-docker"
    assert pools[f"{RETRAIN}-aks"] == "aks-gpu" and pools[f"{RETRAIN}-aci"] == "aci-gpu"
    # The pull step stays a template until the job runs, on the machine that runs it.
    assert deployed[RETRAIN]["pull_steps"] == [
        {"prefect.deployments.steps.set_working_directory": {"directory": "{{ $TAOFLOW_PROJECT_DIR }}"}}
    ]


def test_retrain_deployment_has_cron_typed_parameters_and_trigger(deployed, prefect_server):
    deployment = deployed[RETRAIN]
    [schedule] = deployment["schedules"]
    assert schedule["schedule"]["cron"] == "0 2 * * *"
    assert schedule["schedule"]["timezone"] == "Europe/Amsterdam"
    assert schedule["active"] is False and schedule["slug"] == "nightly"

    schema = deployment["parameter_openapi_schema"]
    assert schema["required"] == ["request"]
    request_schema = schema["definitions"]["TrainRequest"]
    assert set(request_schema["properties"]) == set(TrainRequest.model_fields) - {"key"}  # never a parameter
    assert request_schema["properties"]["num_epochs"]["type"] == "integer"
    assert request_schema["properties"]["launcher"]["enum"] == ["docker", "process"]
    assert "Secret block" in request_schema["properties"]["key_block"]["description"]
    defaults = deployment["parameters"]["request"]
    TrainRequest.model_validate(defaults)  # the UI form starts valid
    assert defaults["key_block"] == "tao-model-key" and "key" not in defaults
    assert deployment["enforce_parameter_schema"] is True

    automations = prefect_server.post("/automations/filter", {}).json()
    mine = [a for a in automations if a["actions"][0].get("deployment_id") == deployment["id"]]
    assert len(mine) == 1
    trigger = mine[0]["trigger"]
    assert trigger["expect"] == ["taoflow.dataset.ready"]
    assert trigger["match"] == {"prefect.resource.id": "azure.blob.*"}
    templated = mine[0]["actions"][0]["parameters"]["request"]
    assert templated["training_data"]["location"] == "{{ event.resource['taoflow.dataset.location'] }}"
    # The other deployments run inside the TAO image: process launcher, no trigger of their own.
    assert deployed[f"{RETRAIN}-aks"]["parameters"]["request"]["launcher"] == "process"
    owners = {a["actions"][0].get("deployment_id") for a in automations}
    assert owners == {deployment["id"]}


def test_watch_deployment_polls_on_an_interval_once_switched_on(deployed, prefect_server):
    """A fresh deploy schedules no run that cannot work yet: the poll needs the credentials block."""
    watch = deployed["watch-blob-datasets"]
    [schedule] = watch["schedules"]
    assert schedule["schedule"]["interval"] == 60 and schedule["active"] is False
    assert watch["parameters"]["rules"] == ["datasets/incoming/*"]
    assert watch["parameters"]["credentials_block"] == "taoflow-blob"
    assert prefect_server.flow_runs(watch["id"]) == []
    # The command docs/deploy.md and the ConfigError give to switch it on names it this way.
    listed = prefect_server.prefect("deployment", "schedule", "ls", "watch-blob-datasets/watch-blob-datasets")
    assert listed.returncode == 0 and schedule["id"] in listed.stdout, listed.stdout + listed.stderr


def test_watch_run_without_the_credentials_block_is_one_config_error(deployed, prefect_server):
    from flows.watch import watch_blob_datasets
    from tasks.errors import ConfigError
    from tests.fixtures.services import prefect_api_at

    parameters = dict(deployed["watch-blob-datasets"]["parameters"], state_block=f"w-{uuid.uuid4().hex[:8]}")
    with prefect_api_at(prefect_server.api_url), pytest.raises(ConfigError) as caught:
        watch_blob_datasets(**parameters)
    error = caught.value
    assert "'taoflow-blob'" in error.what and "prefect block create azure-blob-storage-credentials" in error.fix
    assert "Unable to find block document" not in str(error)
    # The command the fix names exists and knows the block type on a fresh server.
    shown = prefect_server.prefect("block", "create", "azure-blob-storage-credentials")
    assert shown.returncode == 0, shown.stdout + shown.stderr


def test_watch_switched_on_as_docs_deploy_md_says(deployed, prefect_server, azurite_env):
    """The block from the connection string, then the schedule resumed by the documented commands."""
    create = ("import os; from prefect_azure import AzureBlobStorageCredentials as C; "
              "C(connection_string=os.environ['AZURE_STORAGE_CONNECTION_STRING']).save('taoflow-blob')")
    made = subprocess.run([sys.executable, "-c", create], env=prefect_server.env(), capture_output=True, text=True,
                          timeout=120)
    assert made.returncode == 0, made.stderr
    watch = "watch-blob-datasets/watch-blob-datasets"
    [schedule] = deployed["watch-blob-datasets"]["schedules"]
    resumed = prefect_server.prefect("deployment", "schedule", "resume", watch, schedule["id"])
    try:
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        [now] = prefect_server.get(f"/deployments/{deployed['watch-blob-datasets']['id']}")["schedules"]
        assert now["active"] is True
    finally:
        prefect_server.prefect("deployment", "schedule", "pause", watch, schedule["id"])


def _runs_for(prefect_server, deployment_id: str, account: str) -> list[dict]:
    runs = prefect_server.flow_runs(deployment_id)
    return [r for r in runs if f"//{account}." in r["parameters"]["request"]["training_data"]["location"]]


def test_marker_upload_through_the_bridge_starts_exactly_one_run(deployed, prefect_server, tmp_path):
    deployment_id = deployed[RETRAIN]["id"]
    account = f"acct{uuid.uuid4().hex[:10]}"
    events = dataset_burst(account, "datasets", "incoming/kitti-0412", 30)
    debouncer = make_debouncer(tmp_path, rules=["datasets/incoming/*"])
    with running_bridge(debouncer, prefect_server.api_url) as url, httpx.Client(base_url=url) as client:
        for query in ("", "?code=wrong"):
            assert client.post(f"/eventgrid{query}", **delivery(events)).status_code == 401
        answer = client.post(f"/eventgrid?code={SECRET}", **delivery(events))
        assert answer.status_code == 200, answer.text
        runs: list[dict] = []

        def one_run() -> bool:
            runs[:] = _runs_for(prefect_server, deployment_id, account)
            return bool(runs)

        assert wait_until(one_run, timeout=60), "no flow run from the marker"
        # Event Grid redelivers: the same ids again, in one batch and one by one.
        assert client.post(f"/eventgrid?code={SECRET}", **delivery(events)).json()["duplicates"] == len(events)
        for event in events[-5:]:
            assert client.post(f"/eventgrid?code={SECRET}", **delivery([event])).json()["duplicates"] == 1
        time.sleep(4)  # several flush rounds and trigger evaluations
        counters = client.get("/healthz").json()["counters"]
    assert counters["emitted"] == 1 and counters["duplicates"] == len(events) + 5
    runs = _runs_for(prefect_server, deployment_id, account)
    assert len(runs) == 1, [r["name"] for r in runs]
    request = runs[0]["parameters"]["request"]
    assert request["training_data"]["location"] == f"https://{account}.blob.core.windows.net/datasets/incoming/kitti-0412/"
    assert request["training_tfrecords"]["location"] == (
        f"https://{account}.blob.core.windows.net/tfrecords/incoming/kitti-0412"
    )
    assert request["model_subfolder"].startswith("incoming-kitti-0412-20")
    TrainRequest.model_validate(request)  # the trigger supplies a whole, valid request
    assert request["key_block"] == "tao-model-key" and request["launcher"] == "docker"
    assert runs[0]["state_type"] == "SCHEDULED"


SAFE_COMPONENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")


@pytest.mark.parametrize("cloud", ["azurite", "us-government"])
def test_trigger_parameters_follow_the_event_url(deployed, prefect_server, tmp_path, cloud):
    """The trigger's locations keep the endpoint the event came from; the subfolder is one safe component."""
    tag = uuid.uuid4().hex[:8]
    if cloud == "azurite":
        account, endpoint = "devstoreaccount1", "http://127.0.0.1:10000/devstoreaccount1"
    else:
        account = f"acct{tag}"
        endpoint = f"https://{account}.blob.core.usgovcloudapi.net"
    prefix = f"incoming/{tag} .set#1"  # a space, a dot and a '#' that must not end up in a folder name
    events = [blob_created(account, "datasets", f"{prefix}/{name}", endpoint=endpoint) for name in ("a.png", "_READY")]
    debouncer = make_debouncer(tmp_path, rules=["datasets/incoming/*"])
    origins = EventOrigins(endpoints=(endpoint,) if cloud == "azurite" else ())
    deployment_id = deployed[RETRAIN]["id"]

    def ours() -> list[dict]:
        return [r for r in prefect_server.flow_runs(deployment_id)
                if tag in r["parameters"]["request"]["training_data"]["location"]]

    with running_bridge(debouncer, prefect_server.api_url, origins=origins) as url:
        answer = httpx.post(f"{url}/eventgrid?code={SECRET}", **delivery(events))
        assert answer.status_code == 200 and answer.json()["accepted"] == 2, answer.text
        assert wait_until(lambda: bool(ours()), timeout=60), "the trigger started no run"
    [run] = ours()
    request = run["parameters"]["request"]
    assert request["training_data"]["location"] == f"{endpoint}/datasets/{quote(prefix)}/"
    assert request["training_tfrecords"]["location"] == f"{endpoint}/tfrecords/{quote(prefix)}"
    subfolder = request["model_subfolder"]
    assert SAFE_COMPONENT.fullmatch(subfolder) and subfolder.startswith(f"incoming-{tag}-.set-1-20"), subfolder
    TrainRequest.model_validate(request)


def test_wrong_secret_starts_no_run(deployed, prefect_server, tmp_path):
    account = f"acct{uuid.uuid4().hex[:10]}"
    debouncer = make_debouncer(tmp_path, rules=["datasets/incoming/*"], quiet=0.0)
    with running_bridge(debouncer, prefect_server.api_url) as url:
        for query in ("", "?code=", f"?code={SECRET}x", f"?key={SECRET}"):
            answer = httpx.post(f"{url}/eventgrid{query}", **delivery(dataset_burst(account, "datasets", "incoming/a", 3)))
            assert answer.status_code == 401
        time.sleep(3)
    assert _runs_for(prefect_server, deployed[RETRAIN]["id"], account) == []


def test_burst_of_1000_uploads_starts_one_run_per_dataset(deployed, prefect_server, tmp_path):
    """1,000 BlobCreated events over four datasets (Event Grid batches, shuffled) -> four runs."""
    import random

    deployment_id = deployed[RETRAIN]["id"]
    account = f"acct{uuid.uuid4().hex[:10]}"
    events = [e for i in range(4) for e in dataset_burst(account, "datasets", f"incoming/set-{i}", 249)]
    assert len(events) == 1000  # 249 files + the marker, four times
    random.Random(7).shuffle(events)
    markers = [e for e in events if e["subject"].endswith("/_READY")]
    events = [e for e in events if e not in markers] + markers  # markers last, as uploads finish
    debouncer = make_debouncer(tmp_path, rules=["datasets/incoming/*"])
    with running_bridge(debouncer, prefect_server.api_url) as url, httpx.Client(base_url=url) as client:
        for start in range(0, len(events), 50):
            answer = client.post(f"/eventgrid?code={SECRET}", **delivery(events[start:start + 50]))
            assert answer.status_code == 200, answer.text
        assert wait_until(lambda: len(_runs_for(prefect_server, deployment_id, account)) >= 4, timeout=60)
        time.sleep(4)
        counters = client.get("/healthz").json()["counters"]
    assert counters["accepted"] == 1000 and counters["emitted"] == 4
    runs = _runs_for(prefect_server, deployment_id, account)
    locations = sorted(r["parameters"]["request"]["training_data"]["location"] for r in runs)
    assert locations == [f"https://{account}.blob.core.windows.net/datasets/incoming/set-{i}/" for i in range(4)]


def test_polling_fallback_starts_exactly_one_run(deployed, prefect_server, azurite_env, blob_service):
    """Azurite emits no Event Grid events: the watch flow polls it and the same trigger fires."""
    from flows.watch import watch_blob_datasets
    from tests.fixtures.services import prefect_api_at

    container = blob_service.create_container(f"datasets{uuid.uuid4().hex[:8]}")
    for i in range(6):
        container.upload_blob(f"incoming/poll-set/image_2/{i:04d}.png", b"png" * (i + 1))
    container.upload_blob("incoming/poll-set/_READY", b"")
    deployment_id = deployed[RETRAIN]["id"]
    with prefect_api_at(prefect_server.api_url):
        kwargs = dict(rules=[f"{container.container_name}/incoming/*"], state_block=f"w-{uuid.uuid4().hex[:8]}")
        first = watch_blob_datasets(**kwargs)
        again = watch_blob_datasets(**kwargs)
    assert len(first["emitted"]) == 1 and again["emitted"] == []

    def ours() -> list[dict]:
        return [r for r in prefect_server.flow_runs(deployment_id)
                if f"/{container.container_name}/incoming/poll-set" in r["parameters"]["request"]["training_data"]["location"]]

    assert wait_until(lambda: bool(ours()), timeout=60), "the polled dataset started no run"
    time.sleep(4)
    assert len(ours()) == 1
    # Azurite is path-style: the TFRecords location keeps its endpoint, not an assumed Azure host.
    endpoint = container.url[: -len(f"/{container.container_name}")]
    request = ours()[0]["parameters"]["request"]
    assert request["training_tfrecords"]["location"] == f"{endpoint}/tfrecords/incoming/poll-set"
    assert request["model_subfolder"].startswith("incoming-poll-set-20")


# --- no secret reaches the server's store (issue 15, item 5) ----------------------------------

SAS_QUERY = "sv=2024-08-04&ss=b&srt=co&sp=rl&se=2030-01-01T00:00:00Z&sig=DEPLOYSIG0123456789abcdefABCDEF%3D"


def _hostile_requests(defaults: dict) -> dict[str, dict]:
    """Requests a deployment run must refuse, by what is wrong with them."""
    cases = {"key": defaults | {"key": "tlt_encode-DEPLOYKEY"}, "short key": defaults | {"key": "DK7"}}
    for field in ("spec", "dataset_convert_spec", "output"):
        cases[f"SAS in {field}"] = defaults | {field: f"https://acct.blob.core.windows.net/c/x?{SAS_QUERY}"}
    for slot in ("training_data", "training_tfrecords", "base_model"):
        binding = defaults[slot] | {"location": f"https://acct.blob.core.windows.net/c/{slot}?{SAS_QUERY}"}
        cases[f"SAS in {slot}"] = defaults | {slot: binding}
    for field in ("model_app_name", "model_subfolder", "model_name"):
        for name in ("..", "a/b", "#x", f"x?{SAS_QUERY}"):
            cases[f"{field}={name[:6]!r}"] = defaults | {field: name}
    return cases


def test_deployment_runs_with_a_key_sas_or_escaping_name_are_refused_before_storage(deployed, prefect_server):
    deployment = deployed[RETRAIN]
    defaults = deployment["parameters"]["request"]
    before = len(prefect_server.flow_runs(deployment["id"]))
    refused = {}
    for case, request in _hostile_requests(defaults).items():
        answer = httpx.post(f"{prefect_server.api_url}/deployments/{deployment['id']}/create_flow_run",
                            json={"parameters": {"request": request}}, timeout=30)
        assert answer.status_code == 409, (case, answer.status_code, answer.text)
        refused[case] = answer.json()["detail"]
    # The refusal of a key says how to give it instead, and never quotes the key.
    for case in ("key", "short key"):
        assert "Secret block" in refused[case] and "key_block" in refused[case] and "TAO_KEY" in refused[case]
        assert "DEPLOYKEY" not in refused[case] and "DK7" not in refused[case]
    assert "request.model_subfolder" in refused["model_subfolder='..'"]
    # The CLI path (`prefect deployment run --params`) meets the same check.
    cli = prefect_server.prefect("deployment", "run", f"train-detectnet-v2/{RETRAIN}",
                                 "--params", json.dumps({"request": defaults | {"key": "tlt_encode-DEPLOYKEY"}}))
    assert cli.returncode != 0 and "key_block" in cli.stdout + cli.stderr
    assert len(prefect_server.flow_runs(deployment["id"])) == before  # nothing was stored
    server_log = (prefect_server.home / "server.log").read_text(errors="replace")
    assert "DEPLOYKEY" not in server_log and "DEPLOYSIG" not in server_log
    print(f"\n{len(refused) + 1} hostile deployment runs refused before storage")
