"""Event Grid and CloudEvents 1.0 deliveries -> `BlobCreated`, with a reason for every refusal.

`content.py` decides the schema from the Content-Type and hands over plain event objects;
here each is read. A body is refused whole (`EventError`, the receiver answers 400) when it is
not what Event Grid sends: an event without id/type, or a BlobCreated whose subject, time or
size cannot be read, or whose `data.url` is not where its topic and subject say the blob is
(`origin.py`). Well-formed events of other types or of uncommitted writes are kept as
`Ignored`, events outside the operator's allow-list as `refused`: counted, never silently lost.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping

from tasks.errors import EventError
from tasks.events.content import CE_SPECVERSION, Schema, read_events
from tasks.events.model import COMMITTED_APIS, BlobCreated, Ignored
from tasks.events.origin import EventOrigins, OriginMismatch, read_origin

BLOB_CREATED = "Microsoft.Storage.BlobCreated"
SUBSCRIPTION_VALIDATION = "Microsoft.EventGrid.SubscriptionValidationEvent"

_SUBJECT = re.compile(r"^/blobServices/default/containers/(?P<container>[^/]+)/blobs/(?P<blob>.+)$")
_ACCOUNT_IN_TOPIC = re.compile(r"/providers/Microsoft\.Storage/storageAccounts/(?P<account>[^/]+)$", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: Azure's own limit on a blob name.
MAX_BLOB_NAME = 1024
_JSON = {"content-type": "application/json"}


@dataclass
class Delivery:
    """What one POST carried."""

    schema: Schema
    blobs: list[BlobCreated] = field(default_factory=list)
    ignored: list[Ignored] = field(default_factory=list)
    #: Well-formed BlobCreated events for storage outside the allow-list.
    refused: list[Ignored] = field(default_factory=list)
    validation_code: str | None = None

    @property
    def received(self) -> int:
        return len(self.blobs) + len(self.ignored) + len(self.refused)


def parse_delivery(
    body: bytes | str, headers: Mapping[str, str] = _JSON, *, origins: EventOrigins | None = None
) -> Delivery:
    """Read one webhook body: an Event Grid array, one CloudEvent or a batch, or a binary-mode CloudEvent.

    >>> parse_delivery(b'[]')
    Traceback (most recent call last):
    tasks.errors.EventError: request body: the body is an empty array
      how to fix: send at least one event
    """
    origins = origins or EventOrigins()
    schema, events = read_events(body, headers)
    delivery = Delivery(schema=schema)
    for index, event in enumerate(events):
        where = f"request body event [{index}]"
        if not isinstance(event, dict):
            raise EventError(f"an event must be a JSON object, not {type(event).__name__}", where=where)
        _read_event(event, schema, where, delivery, origins)
    return delivery


def _read_event(event: dict, schema: Schema, where: str, delivery: Delivery, origins: EventOrigins) -> None:
    names = _FIELDS[schema]
    if schema == "eventgrid" and "eventType" not in event and "specversion" in event:
        raise EventError(
            "a CloudEvent sent as application/json, the Event Grid schema's media type",
            where=where,
            fix="send CloudEvents as application/cloudevents+json (structured), "
            "application/cloudevents-batch+json (batch) or with ce-* headers (binary)",
        )
    event_id = _text(event, names["id"], where)
    event_type = _text(event, names["type"], where)
    if schema == "cloudevents" and event.get("specversion") != CE_SPECVERSION:
        raise EventError(f"specversion {str(event.get('specversion'))[:20]!r} is not {CE_SPECVERSION}", where=where)
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
    blob = _blob_created(event, data, schema, event_id, str(api), where, origins)
    if origins.allows(blob.account, blob.container):
        delivery.blobs.append(blob)
    else:
        delivery.refused.append(
            Ignored(event_id, f"{blob.account}/{blob.container} is not on the allow-list ({' '.join(origins.allow)})")
        )


_FIELDS: dict[Schema, dict[str, str]] = {
    "eventgrid": {"id": "id", "type": "eventType", "time": "eventTime", "topic": "topic"},
    "cloudevents": {"id": "id", "type": "type", "time": "time", "topic": "source"},
}


def _blob_created(
    event: dict, data: dict, schema: Schema, event_id: str, api: str, where: str, origins: EventOrigins
) -> BlobCreated:
    names = _FIELDS[schema]
    topic = _text(event, names["topic"], where)
    account = _ACCOUNT_IN_TOPIC.search(topic)
    if not account:
        raise EventError(
            f"{names['topic']} {topic[:200]!r} is not /subscriptions/…/providers/Microsoft.Storage/storageAccounts/<a>",
            where=where,
        )
    subject = _text(event, "subject", where)
    match = _SUBJECT.match(subject)
    if not match:
        raise EventError(
            f"subject {subject[:200]!r} is not /blobServices/default/containers/<c>/blobs/<path>", where=where
        )
    container, blob = match["container"], match["blob"]
    _check_blob_name(blob, where)
    url = data.get("url")
    if not isinstance(url, str) or len(url) > 4096:
        raise EventError("data.url is missing or not a URL", where=where)
    try:
        origin = read_origin(url, account=account["account"], container=container, blob=blob, endpoints=origins.endpoints)
    except OriginMismatch as exc:
        raise EventError(f"{exc}: the event contradicts itself or points outside storage", where=where) from None
    length = data.get("contentLength", 0)
    if isinstance(length, bool) or not isinstance(length, int) or length < 0:
        raise EventError(f"data.contentLength {length!r} is not a byte count", where=where)
    etag = data.get("eTag")
    return BlobCreated(
        account=origin.account,
        container=container,
        blob=blob,
        url=url,
        endpoint=origin.endpoint,
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


def _time(value: Any, where: str) -> datetime:
    if value is None:
        return datetime.now(timezone.utc)  # CloudEvents `time` is optional
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        raise EventError(f"event time {str(value)[:64]!r} is not ISO 8601", where=where) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
