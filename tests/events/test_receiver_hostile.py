"""Hostile and broken input through the receiver: each ends in its status and reason, nothing recorded.

These use Starlette's TestClient (in-process ASGI, an unexpected exception fails the test) against
the real SQLite store; the emitter points at a closed port, so any window that slipped through
would show up in the counters.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasks.errors import ConfigError
from tasks.events import PrefectEventsEmitter
from tasks.events.receiver import ReceiverSettings, create_app
from tests.events.bridge import SECRET, in_process_receiver, make_debouncer
from tests.events.bridge import nothing_recorded as _nothing_recorded
from tests.events.bridge import post as _post
from tests.events.eventgrid import MEDIA, as_cloudevent, blob_created, body, dataset_burst, delivery, validation_event

CAP = 64 * 1024


@pytest.fixture
def receiver(tmp_path):
    with in_process_receiver(tmp_path, max_body_bytes=CAP) as client:
        yield client


def test_subscription_validation_handshake(receiver):
    answer = _post(receiver, body(validation_event("512d38b6-c7b8-40c8-89fe-f46f9e9622b6")))
    assert answer.status_code == 200
    assert answer.json() == {"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}
    _nothing_recorded(receiver)


def test_cloudevents_abuse_protection_handshake(receiver):
    answer = receiver.options(
        f"/eventgrid?code={SECRET}",
        headers={"WebHook-Request-Origin": "eventgrid.azure.net", "WebHook-Request-Rate": "120"},
    )
    assert answer.status_code == 200
    assert answer.headers["WebHook-Allowed-Origin"] == "eventgrid.azure.net"
    assert answer.headers["WebHook-Allowed-Rate"] == "*"
    assert receiver.options(f"/eventgrid?code={SECRET}").headers["WebHook-Allowed-Origin"] == "*"


def test_refuses_to_start_without_a_secret(tmp_path):
    with pytest.raises(ConfigError, match="TAOFLOW_EVENTS_SECRET"):
        create_app(make_debouncer(tmp_path), PrefectEventsEmitter("http://x/api"), ReceiverSettings(secret=None))
    create_app(make_debouncer(tmp_path / "b"), PrefectEventsEmitter("http://x/api"),
               ReceiverSettings(secret=None, insecure=True))


def test_body_over_the_cap_is_413_by_header_and_by_counted_bytes(receiver):
    huge = body([blob_created("acct", "data", f"ds/{'x' * 900}-{i}") for i in range(100)])
    assert len(huge) > CAP
    assert _post(receiver, huge).status_code == 413

    def chunks():  # no Content-Length: chunked transfer, the byte count must catch it
        for start in range(0, len(huge), 4096):
            yield huge[start : start + 4096]

    answer = _post(receiver, chunks())
    assert answer.status_code == 413 and answer.json()["limit"] == CAP
    assert _post(receiver, b"[]", headers={"content-length": "99999999999"}).status_code == 413
    _nothing_recorded(receiver)


@pytest.mark.parametrize(
    "payload, reason",
    [
        (b"{not json", "not JSON"),
        (b"\xff\xfe garbage", "not JSON"),
        (b"[]", "empty array"),
        (b"[1, 2]", "JSON object"),
        (b'"a string"', "JSON object"),
        (json.dumps([{"eventType": "Microsoft.Storage.BlobCreated"}]).encode(), "'id'"),
        (json.dumps([{**blob_created("acct", "data", "ds/f"), "subject": "/wrong"}]).encode(), "subject"),
        (json.dumps([{**blob_created("acct", "data", "ds/f"), "data": []}]).encode(), "data object"),
        (json.dumps([{**blob_created("acct", "data", "ds/../../etc/passwd")}]).encode(), "'..'"),
        (json.dumps([blob_created("acct", "data", "ds/" + "n" * 1100)]).encode(), "1024"),
        (json.dumps([{**blob_created("acct", "data", "ds/f"), "eventTime": "yesterday"}]).encode(), "ISO 8601"),
        (json.dumps([{**blob_created("acct", "data", "ds/f"), "id": "a\x00b"}]).encode(), "control"),
    ],
)
def test_malformed_and_wrong_schema_bodies_are_400_with_a_reason(receiver, payload, reason):
    answer = _post(receiver, payload)
    assert answer.status_code == 400
    assert reason in answer.json()["error"]
    _nothing_recorded(receiver)


def test_other_event_types_and_uncommitted_writes_are_counted_as_filtered(receiver):
    events = [
        blob_created("acct", "data", "ds/a", event_type="Microsoft.Storage.BlobDeleted", api="DeleteBlob"),
        blob_created("acct", "data", "ds/b", api="CreateFile", size=0),
        blob_created("acct", "other", "ds/c"),  # no rule covers this container
        blob_created("acct", "data", "loose-file"),  # next to the dataset folders, in none
    ]
    counts = _post(receiver, body(events)).json()
    assert counts == {"received": 4, "accepted": 0, "filtered": 4, "duplicates": 0, "late": 0}


def test_replayed_ids_count_once_even_inside_one_body(receiver):
    events = dataset_burst("acct", "data", "ds", 3, marker=None)
    first = _post(receiver, body(events + events[:1])).json()
    assert first["accepted"] == 3 and first["duplicates"] == 1
    again = _post(receiver, body([as_cloudevent(e) for e in events]), MEDIA["cloudevents-batch"]).json()
    assert again["accepted"] == 0 and again["duplicates"] == 3
    window = receiver.debouncer.store.pending()[0]
    assert window.blob_count == 3


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=20,
)


def _mutations():
    base = blob_created("acct", "data", "ds/img.png")
    keys = st.sampled_from(sorted(base) + ["data.api", "data.url", "data.contentLength", "specversion"])
    return st.lists(st.tuples(keys, _json), min_size=1, max_size=4).map(lambda edits: _apply(base, edits))


def _apply(base: dict, edits) -> dict:
    event = json.loads(json.dumps(base))
    for key, value in edits:
        if key.startswith("data."):
            if isinstance(event.get("data"), dict):
                event["data"][key[5:]] = value
        else:
            event[key] = value
    return event


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=st.one_of(_json.map(lambda v: json.dumps(v).encode()), st.binary(max_size=300), _mutations().map(lambda e: body([e]))))
def test_fuzzed_bodies_never_crash_the_receiver(receiver, payload):
    answer = _post(receiver, payload)
    assert answer.status_code in {200, 400}, answer.text
    if answer.status_code == 400:
        assert answer.json()["error"]
    else:
        counts = answer.json()
        if "validationResponse" not in counts:
            assert counts["received"] == counts["accepted"] + counts["filtered"] + counts["duplicates"]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(code=st.text(max_size=40).filter(lambda c: c != SECRET))
def test_any_wrong_secret_is_refused(receiver, code):
    answer = receiver.post("/eventgrid", params={"code": code}, **delivery(dataset_burst("acct", "data", "ds", 1)))
    assert answer.status_code == 401
    _nothing_recorded(receiver)
