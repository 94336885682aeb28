"""Champion / challenger end to end on real Azurite, dockerd (stand-in TAO) and the Prefect API.

The stand-in's evaluate scores a model by the epochs its trainer wrote into it (AP = 100 - 50/(E+1)
- 8i per class, `tests/standin/detectnet_v2/scripts/evaluate`), so fewer epochs make an honestly
worse model and more epochs a better one:

- run 1 (3 epochs) is the first model: promoted, its card and champion.json published;
- run 2 (2 epochs) is worse on the same held-out data: "Not promoted", champion.json byte-identical,
  the reasons per class in the flow run's state (read back through the Prefect client) and in the
  notification the documented automation sends;
- run 3 (5 epochs) is better: "Promoted", the old champion's card kept;
- a run killed between publishing and promotion leaves the old champion in place.

The TFRecords are made beforehand (real TFRecord framing, 32 frames per fold): the stand-in's
dataset_convert writes empty shards, which the pre-flight of a second run would rightly refuse.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags

from flows.train import train_detectnet_v2
from tasks.storage import sync_up
from tests.dataset.check_cases import write_shard
from tests.flow.test_flow_azure import blob_request, task_runs
from tests.flow.test_flow_local import artifacts_of

pytestmark = pytest.mark.services

REPO = Path(__file__).resolve().parents[2]
AUTOMATION = REPO / "deployments" / "automations" / "not-promoted.yaml"
APP = "models/shapes"
POLICY = {"max_class_ap_drop": 2.0}


def blob_bytes(container, name: str) -> bytes:
    return container.download_blob(name).readall()


def flow_run(flow_run_id):
    with get_client(sync_client=True) as client:
        return client.read_flow_run(flow_run_id)


@pytest.fixture
def dataset(blob_dataset, tmp_path) -> str:
    """The demo dataset in Azurite with its TFRecords already made: two folds, fold 0 held out."""
    shards = tmp_path / "tfrecords"
    shards.mkdir()
    for fold in range(2):
        for shard in range(2):
            write_shard(shards / f"shapes-fold-{fold:03d}-of-002-shard-{shard:05d}-of-00002", 16)
    sync_up(shards, f"{blob_dataset}/tfrecords/shapes")
    return blob_dataset


@pytest.fixture
def webhook():
    """A local HTTP endpoint standing in for Slack/Teams: records what the automation posts."""
    received: list[dict] = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers.get("content-length", 0)))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/notify", received
    server.shutdown()


def create_documented_automation(prefect_api: str, hook_url: str) -> str:
    """deployments/automations/not-promoted.yaml, as docs/deploy.md says: a notification block's id in
    it, then `prefect automation create --from-file`."""
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    block = CustomWebhookNotificationBlock(name="promotion-test", url=hook_url, allow_private_urls=True,
                                           json_data={"subject": "{{subject}}", "body": "{{body}}"})
    block.save(f"promotion-test-{uuid.uuid4().hex[:8]}")
    text = AUTOMATION.read_text().replace("00000000-0000-0000-0000-000000000000", str(block._block_document_id))
    path = Path(os.environ["TAOFLOW_HOME"]) / "not-promoted.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    prefect = str(Path(sys.executable).with_name("prefect"))
    done = subprocess.run([prefect, "automation", "create", "--from-file", str(path)], capture_output=True,
                          text=True, timeout=120, env=dict(os.environ, PREFECT_API_URL=prefect_api))
    assert done.returncode == 0, done.stderr
    return done.stdout.split()[-1]


def delete_automation(prefect_api: str, automation_id: str) -> None:
    prefect = str(Path(sys.executable).with_name("prefect"))
    subprocess.run([prefect, "automation", "delete", "--id", automation_id], capture_output=True, timeout=60,
                   env=dict(os.environ, PREFECT_API_URL=prefect_api), input="y\n", text=True)


def test_promotes_the_first_refuses_a_worse_promotes_a_better(prefect_api, engine_env, dataset, blob_container, webhook):
    image = engine_env()
    hook_url, notifications = webhook
    automation = create_documented_automation(prefect_api, hook_url)
    try:
        # --- run 1: the first model, promoted --------------------------------------------------
        first = train_detectnet_v2(blob_request(dataset, image, model_subfolder="run-1", num_epochs=3,
                                                promotion=POLICY), return_state=True)
        assert first.is_completed() and first.name == "Promoted", first.message
        champion = json.loads(blob_bytes(blob_container, f"{APP}/champion.json"))
        assert (champion["version"], champion["previous"]) == ("run-1", None)
        card1 = blob_bytes(blob_container, f"{APP}/run-1/model-card.json")
        published = json.loads(blob_bytes(blob_container, f"{APP}/run-1/_taoflow_published.json"))
        assert "model-card.json" in json.dumps(published), "the card is part of the publication"
        card = json.loads(card1)
        assert card["evaluation"]["average_precision"] == {"ellipse": 87.5, "rectangle": 79.5}
        assert card["run_id"] == str(first.state_details.flow_run_id) and card["num_epochs"] == 3
        assert card["evaluation"]["held_out"]["source"] == "validation_fold 0 of training_tfrecords"
        before = blob_bytes(blob_container, f"{APP}/champion.json")

        # --- run 2: worse on the same held-out data, not promoted ------------------------------
        second = train_detectnet_v2(blob_request(dataset, image, model_subfolder="run-2", num_epochs=2,
                                                 promotion=POLICY), return_state=True)
        assert second.is_completed() and second.name == "Not promoted", second.message
        assert blob_bytes(blob_container, f"{APP}/champion.json") == before, "the champion pointer changed"
        stored = flow_run(second.state_details.flow_run_id)
        assert stored.state.name == "Not promoted" and stored.state.type.value == "COMPLETED"
        for reason in ("ellipse: AP 83.33 is 4.17 points below the champion (87.50); at most 2.00 allowed",
                       "rectangle: AP 75.33 is 4.17 points below the champion (79.50); at most 2.00 allowed"):
            assert reason in stored.state.message
        result = second.result()
        assert result.promotion.champion_after == "run-1" and not result.promotion.promoted
        checks = {c.name: (c.challenger, c.champion) for c in result.promotion.verdict.classes}
        assert checks == {"ellipse": (pytest.approx(83.3333, abs=1e-3), 87.5),
                          "rectangle": (pytest.approx(75.3333, abs=1e-3), 79.5)}
        # The champion was evaluated again in this run, by TAO, on the same data: its own task run.
        names = {tr.name for tr in task_runs(second.state_details.flow_run_id)}
        assert {"evaluate-challenger", "evaluate-champion"} <= names, names
        arts = artifacts_of(second.state_details.flow_run_id)
        assert "| ellipse | 83.33 | 87.50 | -4.17 |" in arts["promotion"].data
        assert "# Not promoted: run-2" in arts["train-summary"].data
        refused = json.loads(blob_bytes(blob_container, f"{APP}/run-2/model-card.json"))
        assert refused["verdict"]["promote"] is False and refused["compared_with"] == "run-1"

        deadline = time.monotonic() + 120
        while not notifications and time.monotonic() < deadline:
            time.sleep(0.5)
        assert len(notifications) == 1, "the documented automation sent no (or more than one) notification"
        assert "not promoted" in notifications[0]["subject"]
        assert "ellipse: AP 83.33 is 4.17 points below the champion" in notifications[0]["body"]

        # --- run 3: better, promoted; the old champion's card is kept -------------------------
        third = train_detectnet_v2(blob_request(dataset, image, model_subfolder="run-3", num_epochs=5,
                                                promotion=POLICY), return_state=True)
        assert third.is_completed() and third.name == "Promoted", third.message
        champion = json.loads(blob_bytes(blob_container, f"{APP}/champion.json"))
        assert (champion["version"], champion["previous"]) == ("run-3", "run-1")
        assert blob_bytes(blob_container, f"{APP}/run-1/model-card.json") == card1
        assert flow_run(third.state_details.flow_run_id).state.name == "Promoted"
        assert len(notifications) == 1, "a promotion must not trigger the not-promoted automation"
    finally:
        delete_automation(prefect_api, automation)


def test_a_run_killed_between_publishing_and_promotion_leaves_the_champion(prefect_api, engine_env, dataset,
                                                                         blob_container, azurite_env):
    from azure.storage.blob import BlobClient

    image = engine_env()
    first = train_detectnet_v2(blob_request(dataset, image, model_subfolder="kept", num_epochs=3),
                               return_state=True)
    assert first.name == "Promoted", first.message
    before = blob_bytes(blob_container, f"{APP}/champion.json")
    # Another promoter holds the registry's lock, so the next run stops right at the promotion: the
    # moment it is killed is then exactly "published, not yet promoted".
    lock = BlobClient.from_connection_string(azurite_env.connection_string, blob_container.container_name,
                                             f"{APP}/.champion.lock").acquire_lease(lease_duration=-1)
    tag = f"kill-{uuid.uuid4().hex[:8]}"
    request = blob_request(dataset, image, model_subfolder="killed", num_epochs=5)
    code = ("import json, sys\nfrom prefect import tags\nfrom flows.train import train_detectnet_v2\n"
            "from tasks.job.request import TrainRequest\n"
            "with tags(sys.argv[2]):\n    train_detectnet_v2(TrainRequest.model_validate_json(sys.argv[1]))\n")
    log = open(Path(os.environ["TAOFLOW_HOME"]).parent / "killed-run.log", "wb")
    runner = subprocess.Popen([sys.executable, "-c", code, request.model_dump_json(), tag], cwd=REPO,
                              env=dict(os.environ, PREFECT_API_URL=prefect_api), stdout=log, stderr=subprocess.STDOUT)
    try:
        promote = wait_for_running_task(tag, "promote", timeout=600)
        assert promote is not None, "the run never reached its promotion"
        marker = f"{APP}/killed/_taoflow_published.json"
        assert blob_container.get_blob_client(marker).exists(), "promotion started before publishing ended"
        runner.send_signal(signal.SIGKILL)
        runner.wait(30)
    finally:
        if runner.poll() is None:
            runner.kill()
        lock.release()
    assert blob_bytes(blob_container, f"{APP}/champion.json") == before
    card = json.loads(blob_bytes(blob_container, f"{APP}/killed/model-card.json"))
    assert card["verdict"]["promote"] is True, "it would have been promoted: the kill alone kept the champion"
    listed = subprocess.run([sys.executable, "-m", "taoflow", "models", "list",
                             f"{azurite_env.blob_endpoint}/{blob_container.container_name}/{APP}", "--json"],
                            capture_output=True, text=True, timeout=120, env=dict(os.environ))
    assert listed.returncode == 0, listed.stderr
    assert {(r["version"], r["champion"]) for r in json.loads(listed.stdout)} == {("kept", True), ("killed", False)}


def wait_for_running_task(tag: str, prefix: str, timeout: float):
    """The task run named `prefix…` of the flow run tagged `tag`, once it is RUNNING."""
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[tag])))
            for run in runs:
                for task_run in task_runs(run.id):
                    if task_run.name.startswith(prefix) and task_run.state and task_run.state.type.value == "RUNNING":
                        return task_run
            time.sleep(0.5)
    return None


def test_a_run_aimed_at_the_champions_folder_stops_before_any_container(prefect_api, engine_env, demo_data, tmp_path,
                                                                       docker_client):
    from tasks.errors import FolderClaimed
    from tasks.job.request import TrainRequest
    from tests.flow.conftest import request_fields
    from tests.registry.helpers import card_for, publish_and_promote

    image = engine_env()
    output = tmp_path / "out"
    champion = card_for("nightly", {"ellipse": 80.0}, run_id="an-earlier-run", created_at="2026-11-01T02:00:00+00:00")
    assert publish_and_promote(str(output / "shapes"), champion, tmp_path / "work").promoted
    before = (output / "shapes" / "champion.json").read_bytes()
    (tmp_path / "tfr").mkdir()
    fields = request_fields(demo_data, tfrecords=str(tmp_path / "tfr"), output=str(output), image=image,
                            model_subfolder="nightly")
    started = time.time()
    state = train_detectnet_v2(TrainRequest(**fields), return_state=True)
    assert state.is_failed()
    with pytest.raises(FolderClaimed) as caught:
        state.result()
    assert "already holds a model published by an-earlier-run" in caught.value.render()
    run_id = str(state.state_details.flow_run_id)
    # The engine is shared: only containers labelled with this run count (created, even if removed since).
    created = docker_client.events(since=int(started) - 1, until=int(time.time()) + 1, decode=True,
                                   filters={"type": "container", "event": "create"})
    assert not [e for e in created if e["Actor"]["Attributes"].get("org.taoflow.run-id", "").startswith(run_id)]
    assert not [tr.name for tr in task_runs(run_id) if tr.name.startswith(("detectnet_v2", "evaluate"))]
    assert (output / "shapes" / "champion.json").read_bytes() == before
    # A schedule with a fixed model_subfolder publishes every run as its own version instead.
    planned = train_detectnet_v2(TrainRequest(**fields, subfolder_per_run=True), dry_run=True, return_state=True)
    assert planned.is_completed(), planned.message
    version = Path(planned.result().results_location).name
    run_tag = str(planned.state_details.flow_run_id).replace("-", "")[:8]
    assert re.fullmatch(rf"nightly-\d{{8}}T\d{{6}}Z-{run_tag}", version), version
