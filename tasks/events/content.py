"""An HTTP delivery's body -> a list of event objects and their schema, decided by Content-Type.

| Content-Type (and headers) | schema | body |
|---|---|---|
| `ce-specversion` header, any JSON type or none | CloudEvents, binary mode | the event's `data`; attributes in `ce-*` headers |
| `application/cloudevents+json` | CloudEvents, structured | one event (an array is taken too) |
| `application/cloudevents-batch+json` | CloudEvents, batch | an array of events (one object is taken too) |
| `application/json` | Event Grid | an array of events (one object is taken too) |
| anything else | - | `UnreadableContent` (the receiver answers 415) |

The schema is never guessed from the fields: a CloudEvent labelled `application/json` is an
Event Grid event without `eventType`, refused with a message that says how to label it.
"""

from __future__ import annotations

import json
from typing import Any, Literal, Mapping
from urllib.parse import unquote

from tasks.bounded_json import TooDeep, load_bounded
from tasks.errors import EventError, UnreadableContent

Schema = Literal["eventgrid", "cloudevents"]

#: Storage events nest four levels deep; anything far deeper is not one (and would exhaust the parser).
MAX_DEPTH = 32
CE_PREFIX = "ce-"
CE_SPECVERSION = "1.0"
_CE_REQUIRED = ("id", "source", "type", "specversion")
_STRUCTURED = {
    "application/cloudevents+json": "cloudevents",
    "application/cloudevents-batch+json": "cloudevents",
    "application/json": "eventgrid",
}
ACCEPTED = (
    "application/json (Event Grid schema), application/cloudevents+json, application/cloudevents-batch+json, "
    "or CloudEvents binary mode (ce-* headers, JSON data)"
)


def media_type(value: str | None) -> tuple[str, dict[str, str]]:
    """`application/json; charset=utf-8` -> ("application/json", {"charset": "utf-8"}).

    >>> media_type("Application/JSON; charset=UTF-8")
    ('application/json', {'charset': 'utf-8'})
    """
    kind, *params = (value or "").split(";")
    options = {}
    for param in params:
        name, _, text = param.partition("=")
        options[name.strip().lower()] = text.strip().strip('"').lower()
    return kind.strip().lower(), options


def is_json_type(kind: str) -> bool:
    return kind in {"application/json", "text/json"} or (kind.startswith("application/") and kind.endswith("+json"))


def read_events(body: bytes | str, headers: Mapping[str, str]) -> tuple[Schema, list[Any]]:
    """The delivery's events (JSON values, not yet checked) and their schema.

    >>> read_events(b'[{"id": "1"}]', {"content-type": "application/json"})
    ('eventgrid', [{'id': '1'}])
    """
    headers = {name.lower(): value for name, value in headers.items()}
    kind, options = media_type(headers.get("content-type"))
    if options.get("charset", "utf-8") not in {"utf-8", "utf8"}:
        raise UnreadableContent(f"charset {options['charset']!r} is not UTF-8", where="Content-Type", fix=f"send {ACCEPTED}")
    if CE_PREFIX + "specversion" in headers and kind not in _STRUCTURED.keys() - {"application/json"}:
        return "cloudevents", [_binary_event(headers, kind, body)]
    schema = _STRUCTURED.get(kind)
    if schema is None:
        shown = f"{kind!r} is not a media type the bridge reads" if kind else "none was sent"
        raise UnreadableContent(shown, where="Content-Type", fix=f"send {ACCEPTED}")
    document = load_json(body)
    events = document if isinstance(document, list) else [document]
    if not events:
        raise EventError("the body is an empty array", where="request body", fix="send at least one event")
    return schema, events  # type: ignore[return-value]


def _binary_event(headers: dict[str, str], kind: str, body: bytes | str) -> dict[str, Any]:
    """A binary-mode CloudEvent as its structured form: attributes from `ce-*`, the body as `data`."""
    # The HTTP binding percent-encodes header values (spaces, quotes, '%', non-ASCII).
    event: dict[str, Any] = {
        name[len(CE_PREFIX):]: unquote(value) for name, value in headers.items() if name.startswith(CE_PREFIX)
    }
    missing = [name for name in _CE_REQUIRED if not event.get(name)]
    if missing:
        raise EventError(
            f"a binary-mode CloudEvent without the header(s) {', '.join(CE_PREFIX + m for m in missing)}",
            where="request headers",
        )
    if not body:
        event["data"] = None
    elif kind and not is_json_type(kind):
        # Only the data of a BlobCreated is read; other types are counted and dropped unread.
        if event["type"] == "Microsoft.Storage.BlobCreated":
            raise UnreadableContent(
                f"binary-mode data of Content-Type {kind!r}: a BlobCreated event's data is JSON",
                where="Content-Type",
                fix=f"send {ACCEPTED}",
            )
        event["data"] = None
    else:
        event["data"] = load_json(body)  # no Content-Type: CloudEvents' default, application/json
    return event


def load_json(body: bytes | str) -> Any:
    """JSON with a nesting limit: too deep or unparsable is an EventError (400), never a crash."""
    try:
        return load_bounded(body, MAX_DEPTH)
    except TooDeep:
        raise EventError(f"the body nests JSON more than {MAX_DEPTH} levels deep; storage events nest 4",
                         where="request body") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        line = getattr(exc, "lineno", None)
        raise EventError(
            f"the body is not JSON ({exc.__class__.__name__}: {getattr(exc, 'msg', exc)})",
            where=f"request body line {line}" if line else "request body",
            fix=f"send {ACCEPTED}",
        ) from None
