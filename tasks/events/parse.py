"""Event Grid and CloudEvents 1.0 deliveries -> `BlobCreated`, with a reason for every refusal.

A body is refused whole (`EventError`, the receiver answers 400) when it is not the shape
Event Grid sends: not JSON, not an object/array of objects, an event without id/type, or a
BlobCreated whose subject, URL or size cannot be read. Well-formed events of other types
or of uncommitted writes are kept as `Ignored`, so they are counted, never silently lost.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal
from urllib.parse import urlsplit

from tasks.errors import EventError
from tasks.events.model import COMMITTED_APIS, BlobCreated, Ignored

BLOB_CREATED = "Microsoft.Storage.BlobCreated"
SUBSCRIPTION_VALIDATION = "Microsoft.EventGrid.SubscriptionValidationEvent"

_SUBJECT = re.compile(r"^/blobServices/default/containers/(?P<container>[^/]+)/blobs/(?P<blob>.+)$")
_ACCOUNT_IN_TOPIC = re.compile(r"/storageAccounts/(?P<account>[^/]+)", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: Azure's own limit on a blob name.
MAX_BLOB_NAME = 1024

Schema = Literal["eventgrid", "cloudevents"]


@dataclass
class Delivery:
    """What one POST carried."""

    schema: Schema
    blobs: list[BlobCreated] = field(default_factory=list)
    ignored: list[Ignored] = field(default_factory=list)
    validation_code: str | None = None

    @property
    def received(self) -> int:
        return len(self.blobs) + len(self.ignored)


def parse_delivery(body: bytes | str) -> Delivery:
    """Read one webhook body: an Event Grid array, or one CloudEvent, or a CloudEvents batch."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        line = getattr(exc, "lineno", None)
        raise EventError(
            f"the body is not JSON ({exc.__class__.__name__}: {getattr(exc, 'msg', exc)})",
            where=f"request body line {line}" if line else "request body",
            fix="send the Event Grid schema (a JSON array) or CloudEvents 1.0 JSON",
        ) from None
    events = document if isinstance(document, list) else [document]
    if not events:
        raise EventError("the body is an empty array", where="request body", fix="send at least one event")
    delivery: Delivery | None = None
    for index, event in enumerate(events):
        where = f"request body event [{index}]"
        if not isinstance(event, dict):
            raise EventError(f"an event must be a JSON object, not {type(event).__name__}", where=where)
        schema: Schema = "cloudevents" if "specversion" in event else "eventgrid"
        if delivery is None:
            delivery = Delivery(schema=schema)
        _read_event(event, schema, where, delivery)
    assert delivery is not None
    return delivery


def _read_event(event: dict, schema: Schema, where: str, delivery: Delivery) -> None:
    names = _FIELDS[schema]
    event_id = _text(event, names["id"], where)
    event_type = _text(event, names["type"], where)
    if event_type == SUBSCRIPTION_VALIDATION:
        data = event.get("data")
        code = data.get("validationCode") if isinstance(data, dict) else None
        if not isinstance(code, str) or not code:
            raise EventError("a SubscriptionValidationEvent without data.validationCode", where=where)
        delivery.validation_code = code
        return
    if event_type != BLOB_CREATED:
        delivery.ignored.append(Ignored(event_id, f"event type {event_type} is not {BLOB_CREATED}"))
        return
    data = event.get("data")
    if not isinstance(data, dict):
        raise EventError("a BlobCreated event without a data object", where=where)
    api = data.get("api")
    if not isinstance(api, str):
        raise EventError(f"data.api {api!r:.60} is not a string", where=where)
    if api not in COMMITTED_APIS:
        delivery.ignored.append(Ignored(event_id, f"data.api {api!r} is not a committed write"))
        return
    delivery.blobs.append(_blob_created(event, data, schema, event_id, str(api), where))


_FIELDS: dict[Schema, dict[str, str]] = {
    "eventgrid": {"id": "id", "type": "eventType", "time": "eventTime", "topic": "topic"},
    "cloudevents": {"id": "id", "type": "type", "time": "time", "topic": "source"},
}


def _blob_created(event: dict, data: dict, schema: Schema, event_id: str, api: str, where: str) -> BlobCreated:
    names = _FIELDS[schema]
    subject = _text(event, "subject", where)
    match = _SUBJECT.match(subject)
    if not match:
        raise EventError(
            f"subject {subject[:200]!r} is not /blobServices/default/containers/<c>/blobs/<path>", where=where
        )
    container, blob = match["container"], match["blob"]
    _check_blob_name(blob, where)
    url = data.get("url")
    if not isinstance(url, str) or not urlsplit(url).netloc:
        raise EventError("data.url is missing or not a URL", where=where)
    length = data.get("contentLength", 0)
    if isinstance(length, bool) or not isinstance(length, int) or length < 0:
        raise EventError(f"data.contentLength {length!r} is not a byte count", where=where)
    etag = data.get("eTag")
    return BlobCreated(
        account=_account(event.get(names["topic"]), url, container, where),
        container=container,
        blob=blob,
        url=url,
        api=api,
        event_id=event_id,
        etag=etag if isinstance(etag, str) else None,
        content_length=length,
        time=_time(event.get(names["time"]), where),
    )


def _text(event: dict, name: str, where: str) -> str:
    value = event.get(name)
    if not isinstance(value, str) or not value.strip():
        raise EventError(f"field {name!r} is missing or not a non-empty string", where=where)
    if len(value) > 4096 or _CONTROL.search(value):
        raise EventError(f"field {name!r} is too long or holds control characters", where=where)
    return value


def _check_blob_name(blob: str, where: str) -> None:
    if len(blob) > MAX_BLOB_NAME:
        raise EventError(f"the blob name is {len(blob)} characters, over Azure's {MAX_BLOB_NAME}", where=where)
    # Storage never reports such names; they would make a dataset prefix escape its folder.
    if any(part in {"", ".", ".."} for part in blob.split("/")) or "\\" in blob:
        raise EventError(f"blob name {blob[:200]!r} has an empty, '.' or '..' segment or a backslash", where=where)


def _account(topic: Any, url: str, container: str, where: str) -> str:
    if isinstance(topic, str) and (found := _ACCOUNT_IN_TOPIC.search(topic)):
        return found["account"]
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ".blob." in host or ".dfs." in host:
        return host.split(".", 1)[0]
    segments = [s for s in parts.path.split("/") if s]
    if len(segments) >= 2 and segments[1] == container:  # path-style (Azurite, custom domains)
        return segments[0]
    raise EventError("cannot tell the storage account from the topic/source or data.url", where=where)


def _time(value: Any, where: str) -> datetime:
    if value is None:
        return datetime.now(timezone.utc)  # CloudEvents `time` is optional
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        raise EventError(f"event time {str(value)[:64]!r} is not ISO 8601", where=where) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
