"""The bridge on a real socket: deliveries produced by the real SDKs (azure-eventgrid, CNCF
cloudevents) in every content mode, and connections that open and idle."""

from __future__ import annotations

import socket
import time
import uuid

import httpx
import pytest
from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import HttpResponseError
from azure.core.messaging import CloudEvent as AzureCloudEvent
from azure.eventgrid import EventGridEvent, EventGridPublisherClient
from cloudevents.core.bindings import http as ce_http
from cloudevents.core.v1.event import CloudEvent

from tests.events.bridge import SECRET, make_debouncer, running_bridge, wait_until
from tests.events.conftest import recorded_events
from tests.events.eventgrid import dataset_burst

pytestmark = pytest.mark.services

#: Generous: a hang guard for the socket tests, not a measurement.
HANG_GUARD = 60


def _eventgrid_sdk(url: str, events: list[dict]) -> None:
    with EventGridPublisherClient(url, AzureKeyCredential("not-checked")) as client:
        client.send([EventGridEvent(subject=e["subject"], event_type=e["eventType"], data=e["data"], data_version="1",
                                    topic=e["topic"], id=e["id"], event_time=e["eventTime"]) for e in events])


def _eventgrid_sdk_cloudevents(url: str, events: list[dict]) -> None:
    with EventGridPublisherClient(url, AzureKeyCredential("not-checked")) as client:  # a CloudEvents batch
        client.send([AzureCloudEvent(source=e["topic"], type=e["eventType"], subject=e["subject"], data=e["data"],
                                     id=e["id"]) for e in events])


def _cncf(event: dict, **extra) -> CloudEvent:
    attributes = {"type": event["eventType"], "source": event["topic"], "subject": event["subject"],
                  "id": event["id"], **extra}
    return CloudEvent(attributes=attributes, data=event["data"])


def _cncf_post(url: str, events: list[dict], to_message) -> None:
    with httpx.Client(timeout=HANG_GUARD) as client:
        for event in events:  # one event per request, as Event Grid delivers by default
            message = to_message(event)
            answer = client.post(url, headers=message.headers, content=message.body)
            assert answer.status_code == 200, answer.text


SENDERS = {
    "azure-eventgrid: EventGridEvent (application/json)": _eventgrid_sdk,
    "azure-eventgrid: CloudEvent (cloudevents-batch+json)": _eventgrid_sdk_cloudevents,
    "cloudevents: structured": lambda url, events: _cncf_post(
        url, events, lambda e: ce_http.to_structured_event(_cncf(e))),
    "cloudevents: binary, no Content-Type": lambda url, events: _cncf_post(
        url, events, lambda e: ce_http.to_binary_event(_cncf(e))),
    "cloudevents: binary, application/json": lambda url, events: _cncf_post(
        url, events, lambda e: ce_http.to_binary_event(_cncf(e, datacontenttype="application/json"))),
}


@pytest.mark.parametrize("sender", list(SENDERS))
def test_sdk_deliveries_in_every_content_mode_announce_the_dataset(prefect_api_url, tmp_path, sender):
    account = f"acct{uuid.uuid4().hex[:10]}"
    events = dataset_burst(account, "datasets", "incoming/sdk set", 6)
    debouncer = make_debouncer(tmp_path, rules=["datasets/incoming/*"])
    with running_bridge(debouncer, prefect_api_url) as url:
        SENDERS[sender](f"{url}/eventgrid?code={SECRET}", events)
        assert wait_until(lambda: debouncer.store.counters()["emitted"] == 1, timeout=60)
        counters = debouncer.store.counters()
    assert counters["received"] == 7 and counters["accepted"] == 7
    [event] = recorded_events(prefect_api_url, f"azure.blob.{account}/", expect=1)
    assert event["resource"]["taoflow.dataset.location"] == (
        f"https://{account}.blob.core.windows.net/datasets/incoming/sdk%20set/"
    )
    assert event["payload"]["blob_count"] == 7 and event["payload"]["reason"] == "marker"


def test_sdk_refusals_carry_their_status(tmp_path):
    events = dataset_burst("acct", "datasets", "incoming/x", 1)
    debouncer = make_debouncer(tmp_path, rules=["datasets/incoming/*"])
    with running_bridge(debouncer, "http://127.0.0.1:9/api") as url:
        with EventGridPublisherClient(f"{url}/eventgrid?code={SECRET}", AzureKeyCredential("k")) as client:
            batch = [EventGridEvent(subject=e["subject"], event_type=e["eventType"], data=e["data"],
                                    data_version="1", topic=e["topic"]) for e in events]
            with pytest.raises(HttpResponseError) as unreadable:
                client.send(batch, content_type="text/plain")
            assert unreadable.value.status_code == 415
        forged = [dict(e, data=dict(e["data"], url="https://acct.blob.evil.example/datasets/incoming/x/_READY"))
                  for e in events[-1:]]
        with pytest.raises(HttpResponseError) as refused:
            _eventgrid_sdk(f"{url}/eventgrid?code={SECRET}", forged)
        assert refused.value.status_code == 400
        assert "neither an Azure Storage endpoint" in refused.value.response.text()
    assert debouncer.store.counters()["received"] == 0


# --- idle connections ---------------------------------------------------------------------------


def _closed_by_server(sock: socket.socket) -> bytes:
    """Everything the server sent until it closed the connection (recv returns b"")."""
    sock.settimeout(HANG_GUARD)  # socket.timeout (a failure) if the server never closes it
    received = b""
    try:
        while chunk := sock.recv(4096):
            received += chunk
    except ConnectionResetError:  # closed while we were still sending: a reset, not a FIN
        pass
    return received


@pytest.mark.parametrize("idle", ["silent", "trickled head", "stalled body", "after a response"])
def test_idle_connections_are_closed(tmp_path, idle):
    debouncer = make_debouncer(tmp_path)
    with running_bridge(debouncer, "http://127.0.0.1:9/api", idle_timeout=1.0) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=HANG_GUARD) as sock:
            if idle == "trickled head":
                # A byte every half second: each resets uvicorn's own keep-alive timer, never ours.
                for byte in b"POST /eventgrid HTTP/1.1\r\nHost: x\r\n":
                    try:
                        sock.sendall(bytes([byte]))
                    except OSError:
                        break
                    time.sleep(0.5)
            elif idle == "stalled body":
                sock.sendall(f"POST /eventgrid?code={SECRET} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                             "Content-Length: 1000\r\n\r\n[{".encode())
            elif idle == "after a response":
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = _closed_by_server(sock)
        health = httpx.get(f"{url}/healthz").json()  # the server is still serving
    if idle == "stalled body":
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert health["rejected"]["timed_out"] == 1
    elif idle == "after a response":
        assert answer.startswith(b"HTTP/1.1 200")
    else:
        assert answer == b""
    assert health["counters"]["received"] == 0
