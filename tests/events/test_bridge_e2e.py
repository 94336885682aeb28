"""The bridge against the real Prefect API: uvicorn + SQLite store + HTTP emitter, nothing mocked."""

from __future__ import annotations

import random
import time
import uuid

import httpx
import pytest

from tests.events.bridge import SECRET, make_debouncer, running_bridge, wait_until
from tests.events.conftest import recorded_events
from tests.events.eventgrid import as_cloudevent, dataset_burst, delivery

pytestmark = pytest.mark.services


def _account() -> str:
    return f"acct{uuid.uuid4().hex[:10]}"


def test_marker_makes_exactly_one_ready_event_with_the_dataset_location(prefect_api_url, tmp_path):
    account = _account()
    events = dataset_burst(account, "datasets", "incoming/kitti-0412", 40)
    debouncer = make_debouncer(tmp_path, rules=["datasets/incoming/*"])
    with running_bridge(debouncer, prefect_api_url) as url, httpx.Client(base_url=url) as client:
        # Event Grid delivers one event per request by default, in any order.
        shuffled = random.Random(7).sample(events, len(events))
        for event in shuffled:
            answer = client.post(f"/eventgrid?code={SECRET}", **delivery([event]))
            assert answer.status_code == 200, answer.text
        # Every straggler redelivered once more: at-least-once delivery.
        for event in shuffled[:10]:
            assert client.post(f"/eventgrid?code={SECRET}", **delivery([event])).json()["duplicates"] == 1
        assert wait_until(lambda: debouncer.store.counters()["emitted"] == 1, timeout=60)
        health = client.get("/healthz").json()
    found = recorded_events(prefect_api_url, f"azure.blob.{account}/", expect=1)
    assert len(found) == 1
    event = found[0]
    assert event["resource"]["prefect.resource.id"] == f"azure.blob.{account}/datasets/incoming/kitti-0412"
    assert event["resource"]["taoflow.dataset.location"] == (
        f"https://{account}.blob.core.windows.net/datasets/incoming/kitti-0412/"
    )
    # Stragglers after the marker (shuffled order) are folded in as `late`: all 41 are accounted for.
    counters = health["counters"]
    assert counters["received"] == 51 and counters["duplicates"] == 10 and counters["accepted"] == 41
    assert event["payload"]["blob_count"] + counters["late"] == 41
    assert event["payload"]["reason"] == "marker"


def test_burst_of_1000_events_one_event_per_dataset_none_lost(prefect_api_url, tmp_path, record_property):
    """Correctness only (one event per dataset window, nothing lost); latency is bench/events.py's."""
    account = _account()
    datasets = [f"drop/set-{n}" for n in range(4)]
    events = [e for prefix in datasets for e in dataset_burst(account, "uploads", prefix, 249)][:1000]
    assert len(events) == 1000  # 4 x (249 files + marker)
    batches = [events[i : i + 20] for i in range(0, 1000, 20)]
    debouncer = make_debouncer(tmp_path, rules=["uploads/drop/*"])
    with running_bridge(debouncer, prefect_api_url) as url, httpx.Client(base_url=url, timeout=60) as client:
        for number, batch in enumerate(batches):
            # Both schemas, batched as Event Grid batches them.
            sent = delivery(batch) if number % 2 else delivery([as_cloudevent(e) for e in batch], "cloudevents-batch")
            answer = client.post(f"/eventgrid?code={SECRET}", **sent)
            assert answer.status_code == 200, answer.text
        replayed = client.post(f"/eventgrid?code={SECRET}", **delivery(batches[3]))
        assert replayed.json()["duplicates"] == 20
        assert wait_until(lambda: debouncer.store.counters()["emitted"] == 4, timeout=60)
        counters = client.get("/healthz").json()["counters"]
    found = recorded_events(prefect_api_url, f"azure.blob.{account}/", expect=4)
    assert sorted(e["resource"]["taoflow.dataset.prefix"] for e in found) == datasets  # one run per window
    assert counters["received"] == 1020 and counters["duplicates"] == 20
    assert counters["accepted"] == 1000 and counters["filtered"] == 0
    announced = sum(e["payload"]["blob_count"] for e in found) + counters["late"]
    record_property("lost", 1000 - announced)
    record_property("windows", len(found))
    assert announced == 1000, f"{1000 - announced} of 1,000 uploads are in no dataset-ready event"


def test_wrong_or_missing_secret_is_401_and_nothing_is_emitted(prefect_api_url, tmp_path):
    account = _account()
    debouncer = make_debouncer(tmp_path, quiet=0.0)
    with running_bridge(debouncer, prefect_api_url) as url, httpx.Client(base_url=url) as client:
        payload = delivery(dataset_burst(account, "datasets", "x", 3))
        for query in ("", "?code=", "?code=wrong", f"?code={SECRET}x", f"?key={SECRET}"):
            assert client.post(f"/eventgrid{query}", **payload).status_code == 401
        assert client.options("/eventgrid?code=nope").status_code == 401
        time.sleep(1.0)  # several flush rounds
        health = client.get("/healthz").json()
    assert health["counters"]["received"] == 0 and health["rejected"]["unauthorized"] == 6
    assert recorded_events(prefect_api_url, f"azure.blob.{account}/", expect=1, settle=0, timeout=3) == []


def test_pending_window_survives_a_restart_and_is_emitted_once(prefect_api_url, tmp_path):
    account = _account()
    events = dataset_burst(account, "datasets", "restart/me", 5, marker=None)
    first = make_debouncer(tmp_path, quiet=1.0)
    with running_bridge(first, "http://127.0.0.1:9/api") as url:  # the Prefect API is down
        assert httpx.post(f"{url}/eventgrid?code={SECRET}", **delivery(events)).status_code == 200
        time.sleep(1.5)
        assert first.last_error and "unreachable" in first.last_error
    first.store.close()
    second = make_debouncer(tmp_path, quiet=1.0)  # same state dir, API back
    with running_bridge(second, prefect_api_url) as url:
        assert httpx.post(f"{url}/eventgrid?code={SECRET}", **delivery(events[:2])).json()["duplicates"] == 2
        assert wait_until(lambda: second.store.counters()["emitted"] == 1, timeout=60)
    found = recorded_events(prefect_api_url, f"azure.blob.{account}/", expect=1)
    assert len(found) == 1 and found[0]["payload"]["blob_count"] == 5 and found[0]["payload"]["reason"] == "quiet"
