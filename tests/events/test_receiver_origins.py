"""What the receiver believes: the schema from Content-Type, the blob's place from a URL that must
agree with the event's topic and subject, storage on the allow-list, and bounded JSON.

In-process (TestClient: an unexpected exception fails the test) against the real SQLite store;
the emitter points at a closed port, so nothing reaches Prefect from here.
"""

from __future__ import annotations

import json

import pytest

from tasks.errors import ConfigError
from tasks.events.content import MAX_DEPTH
from tasks.events.emitter import LABEL_ENDPOINT, LABEL_LOCATION, LABEL_SLUG, dataset_ready_event
from tasks.events.origin import EventOrigins
from tests.events.bridge import in_process_receiver, nothing_recorded, post
from tests.events.eventgrid import MEDIA, as_cloudevent, blob_created, body, dataset_burst

AZURITE = "http://127.0.0.1:10000/devstoreaccount1"


@pytest.fixture
def receiver(tmp_path):
    with in_process_receiver(tmp_path) as client:
        yield client


def _tampered(field: str, value) -> bytes:
    event = blob_created("acct", "data", "ds/img 1.png")
    if field.startswith("data."):
        event["data"][field[5:]] = value
    else:
        event[field] = value
    return body([event])


# --- the schema comes from Content-Type ----------------------------------------------------


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/xml", "multipart/form-data; boundary=x",
                                          "application/json; charset=latin-1", "application/octet-stream"])
def test_a_media_type_it_cannot_read_is_415_and_names_what_it_reads(receiver, content_type):
    answer = post(receiver, body(dataset_burst("acct", "data", "ds", 2)), content_type)
    assert answer.status_code == 415, answer.text
    assert "application/cloudevents+json" in answer.json()["error"]
    nothing_recorded(receiver)
    assert receiver.get("/healthz").json()["rejected"]["unsupported"] == 1


def test_a_cloudevent_labelled_application_json_is_refused_with_how_to_label_it(receiver):
    answer = post(receiver, body([as_cloudevent(blob_created("acct", "data", "ds/a"))]), MEDIA["eventgrid"])
    assert answer.status_code == 400
    assert "application/cloudevents+json" in answer.json()["error"]
    nothing_recorded(receiver)


@pytest.mark.parametrize("media", ["cloudevents", "cloudevents-batch"])
def test_structured_cloudevents_single_or_batch(receiver, media):
    events = [as_cloudevent(e) for e in dataset_burst("acct", "data", "ds", 3, marker=None)]
    answer = post(receiver, body(events[0] if media == "cloudevents" else events), MEDIA[media])
    assert answer.status_code == 200 and answer.json()["accepted"] == (1 if media == "cloudevents" else 3)


def test_binary_mode_reads_the_ce_headers_and_the_data_body(receiver):
    event = as_cloudevent(blob_created("acct", "data", "ds/a b%.png"))
    headers = {f"ce-{k}": v for k, v in event.items() if k != "data"}
    headers["ce-subject"] = headers["ce-subject"].replace(" ", "%20").replace("%.", "%25.")  # percent-encoded
    answer = post(receiver, json.dumps(event["data"]).encode(), "application/json", headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] == 1
    [window] = receiver.debouncer.store.pending()
    assert window.location == "https://acct.blob.core.windows.net/data/ds/"
    # No Content-Type in binary mode: CloudEvents' default, JSON.
    headers["ce-id"] = "another"
    assert post(receiver, json.dumps(event["data"]).encode(), None, headers=headers).json()["accepted"] == 1


def test_binary_mode_refusals(receiver):
    event = as_cloudevent(blob_created("acct", "data", "ds/a.png"))
    headers = {f"ce-{k}": v for k, v in event.items() if k != "data"}
    data = json.dumps(event["data"]).encode()
    missing = {k: v for k, v in headers.items() if k != "ce-id"}
    answer = post(receiver, data, "application/json", headers=missing)
    assert answer.status_code == 400 and "ce-id" in answer.json()["error"]
    answer = post(receiver, data, "application/octet-stream", headers=headers)
    assert answer.status_code == 415 and "BlobCreated" in answer.json()["error"]
    # Data we never read (another event type) may be anything: counted, not refused.
    other = headers | {"ce-type": "Microsoft.Storage.BlobTierChanged"}
    assert post(receiver, b"\x00\x01", "application/octet-stream", headers=other).json()["filtered"] == 1
    nothing_recorded(receiver)


# --- bounded JSON ------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 1_000, 100_000])
def test_deeply_nested_json_is_400_not_a_crash(receiver, depth):
    for payload in ("[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth):
        answer = post(receiver, payload.encode())
        assert answer.status_code == 400, answer.text[:300]
        assert f"more than {MAX_DEPTH} levels" in answer.json()["error"]
        binary = post(receiver, payload.encode(), "application/json",
                      headers={"ce-id": "1", "ce-source": "/x", "ce-type": "t", "ce-specversion": "1.0"})
        assert binary.status_code == 400
    nothing_recorded(receiver)


# --- the URL must be where the event says the blob is ---------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("data.url", "https://other.blob.core.windows.net/data/ds/img%201.png", "storage account 'other'"),
        ("data.url", "https://acct.blob.core.windows.net/logs/ds/img%201.png", "container 'logs'"),
        ("data.url", "https://acct.blob.core.windows.net/data/ds/other.png", "names blob"),
        ("data.url", "https://acct.blob.evil.example/data/ds/img%201.png", "neither an Azure Storage endpoint"),
        ("data.url", "https://acct.blob.core.windows.net.evil.example/data/ds/img%201.png", "neither"),
        ("data.url", "http://acct.blob.core.windows.net/data/ds/img%201.png", "neither"),  # no TLS
        ("data.url", "https://acct.blob.core.windows.net:8443/data/ds/img%201.png", "neither"),
        ("data.url", f"{AZURITE}/data/ds/img%201.png", "neither"),  # loopback, not configured
        ("data.url", "https://acct.blob.core.windows.net/data/ds/img%201.png?sv=1&sig=x", "query"),
        ("data.url", "https://user:pw@acct.blob.core.windows.net/data/ds/img%201.png", "user info"),
        ("data.url", "https://acct.blob.core.windows.net/data/ds/img%201.png#frag", "fragment"),
        ("data.url", 42, "data.url"),
        ("topic", "/subscriptions/0/resourceGroups/rg/providers/Microsoft.Web/sites/acct", "storageAccounts"),
        ("topic", "/subscriptions/0/providers/Microsoft.Storage/storageAccounts/other", "the topic names 'other'"),
    ],
)
def test_a_url_elsewhere_than_topic_and_subject_is_400(receiver, field, value, reason):
    answer = post(receiver, _tampered(field, value))
    assert answer.status_code == 400, answer.text
    assert reason in answer.json()["error"]
    nothing_recorded(receiver)


@pytest.mark.parametrize(
    ("url_base", "endpoint"),
    [
        ("https://acct.blob.core.windows.net", "https://acct.blob.core.windows.net"),
        ("https://acct.blob.core.usgovcloudapi.net", "https://acct.blob.core.usgovcloudapi.net"),
        ("https://acct.blob.core.chinacloudapi.cn", "https://acct.blob.core.chinacloudapi.cn"),
        # ADLS Gen2 reports dfs URLs; training locations are blob URLs of the same account.
        ("https://acct.dfs.core.windows.net", "https://acct.blob.core.windows.net"),
    ],
)
def test_azure_clouds_are_taken_and_the_dataset_is_located_on_the_blob_endpoint(receiver, url_base, endpoint):
    events = [blob_created("acct", "data", "ds/a b/1.png", endpoint=url_base)]
    assert post(receiver, body(events)).json()["accepted"] == 1
    [window] = receiver.debouncer.store.pending()
    assert window.location == f"{endpoint}/data/ds/"
    labels = dataset_ready_event(window, "quiet", marker="_READY", source="eventgrid")["resource"]
    assert labels[LABEL_ENDPOINT] == endpoint and labels[LABEL_LOCATION] == window.location


def test_configured_endpoints_admit_azurite_and_custom_domains(tmp_path):
    origins = EventOrigins(endpoints=(AZURITE, "https://data.example.com"))
    with in_process_receiver(tmp_path, origins=origins) as client:
        azurite = blob_created("devstoreaccount1", "data", "ds/1.png", endpoint=AZURITE)
        custom = blob_created("data", "data", "ds/1.png", endpoint="https://data.example.com")
        wrong_port = blob_created("devstoreaccount1", "data", "ds/1.png", endpoint="http://127.0.0.1:10001/devstoreaccount1")
        assert post(client, body([azurite, custom])).json()["accepted"] == 2
        assert post(client, body([wrong_port])).status_code == 400
        locations = sorted(w.location for w in client.debouncer.store.pending())
    assert locations == [f"{AZURITE}/data/ds/", "https://data.example.com/data/ds/"]


# --- the allow-list ----------------------------------------------------------------------------------


def test_storage_outside_the_allow_list_is_403_whole_or_counted_when_mixed(tmp_path):
    origins = EventOrigins(allow=("acct/data", "other"))
    with in_process_receiver(tmp_path, rules=("*/*",), origins=origins) as client:
        outside = [blob_created("stranger", "data", "ds/1.png"), blob_created("acct", "logs", "ds/1.png")]
        answer = post(client, body(outside))
        assert answer.status_code == 403
        assert [r["reason"].split(" is not")[0] for r in answer.json()["refused"]] == ["stranger/data", "acct/logs"]
        nothing_recorded(client)
        # A batch mixing both: the allowed events are kept, the others counted and named.
        mixed = post(client, body([blob_created("acct", "data", "ds/1.png"), blob_created("other", "any", "x/1.png"),
                                   *outside]))
        assert mixed.status_code == 200
        counts = mixed.json()
        assert counts["accepted"] == 2 and counts["filtered"] == 2 and len(counts["refused"]) == 2
        assert sorted(w.key for w in client.debouncer.store.pending()) == ["acct/data/ds", "other/any/x"]
        assert client.get("/healthz").json()["rejected"]["not_allowed"] == 4


@pytest.mark.parametrize("origins", [EventOrigins(allow=("Acct",)), EventOrigins(allow=("acct/Bad_Container",)),
                                     EventOrigins(endpoints=("127.0.0.1:10000",)),
                                     EventOrigins(endpoints=("http://h/a/b",))])
def test_an_allow_list_or_endpoint_that_can_never_match_is_a_config_error(tmp_path, origins):
    with pytest.raises(ConfigError):
        with in_process_receiver(tmp_path, origins=origins):
            pass


# --- a store that cannot record: the sender must try again ---------------------------------------------


def test_a_failing_store_is_503_with_retry_after_so_event_grid_redelivers(receiver):
    receiver.debouncer.store.close()
    answer = post(receiver, body(dataset_burst("acct", "data", "ds", 2)))
    assert answer.status_code == 503 and answer.headers["retry-after"] == "10"
    assert "event state store" in answer.json()["error"]
    assert receiver.get("/healthz").status_code == 503


# --- plain functions ------------------------------------------------------------------------------------


def test_the_trigger_labels_for_awkward_prefixes_are_one_safe_component():
    import re

    from tasks.events.model import Window, dataset_location

    for prefix in ("incoming/kitti 04#b?x", ".hidden/../set", "ünï/cödé", "-", "a" * 300):
        window = Window("acct", "data", prefix, dataset_location(AZURITE, "data", prefix), "id", 0, 0)
        component = dataset_ready_event(window, "marker", marker="_READY", source="poll")["resource"][LABEL_SLUG]
        assert re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,79}", component), (prefix, component)

