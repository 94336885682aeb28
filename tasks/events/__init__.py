"""Blob uploads become one `taoflow.dataset.ready` Prefect event per dataset.

Two sources feed the same rules: Azure Event Grid deliveries (the ASGI receiver in
`receiver.py`, served by `webserver.py`; `content.py` reads a body by its Content-Type,
`parse.py` its events, `origin.py` checks where each blob URL points) and a blob listing
(`polling.py`, for places without Event Grid, and for Azurite, which emits none). Both turn
uploads into `BlobCreated`, map each blob to its dataset with `PrefixRule`s, and let the
`Debouncer` collapse a burst into one event, sent to the Prefect API by
`PrefectEventsEmitter`. No Prefect import here: the flow and the CLI sit at the edge.
"""

from tasks.events.debounce import Debouncer, DebounceSettings
from tasks.events.emitter import EmitError, PrefectEventsEmitter, dataset_ready_event
from tasks.events.model import BlobCreated, Ignored
from tasks.events.origin import EventOrigins
from tasks.events.parse import Delivery, parse_delivery
from tasks.events.rules import PrefixRule, parse_rules
from tasks.events.store import MemoryStore, SQLiteStore

__all__ = [
    "BlobCreated",
    "Debouncer",
    "DebounceSettings",
    "Delivery",
    "EmitError",
    "EventOrigins",
    "Ignored",
    "MemoryStore",
    "PrefectEventsEmitter",
    "PrefixRule",
    "SQLiteStore",
    "dataset_ready_event",
    "parse_delivery",
    "parse_rules",
]
