"""The typed shapes shared by both event sources."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

#: Namespace of every id taoflow derives (window ids, Prefect event ids).
TAOFLOW_NAMESPACE = uuid.UUID("5b0c7f0e-2f61-4c55-9b7e-7a0f3d1c9e21")

#: The `data.api` values of a *committed* write; `CreateFile` (ADLS, length 0) fires before the data lands.
COMMITTED_APIS = frozenset({"PutBlob", "PutBlockList", "CopyBlob", "FlushWithClose"})

#: Every counter the debouncer keeps; `received = accepted + filtered + duplicates` always holds.
COUNTERS = ("received", "accepted", "filtered", "duplicates", "late", "emitted")


@dataclass(frozen=True, slots=True)
class BlobCreated:
    """One committed blob write, from Event Grid or from a listing."""

    account: str
    container: str
    blob: str
    url: str
    #: The account's blob endpoint, no trailing slash: `https://ACCOUNT.blob.core.windows.net`, or
    #: `http://127.0.0.1:10000/devstoreaccount1` for path-style (Azurite) storage.
    endpoint: str
    api: str
    event_id: str
    etag: str | None
    content_length: int
    time: datetime


@dataclass(frozen=True, slots=True)
class Ignored:
    """An event that is well formed but not a committed blob write (deleted, tier change, CreateFile...)."""

    event_id: str
    reason: str


@dataclass(slots=True)
class Window:
    """The pending uploads under one dataset prefix, waiting for quiet or for the marker.

    Times are epoch seconds: `first_seen`/`last_seen` when the bridge *observed* activity (so
    clock skew between Azure and this host cannot make a window due early), `marker_time`
    the marker's own event time (what the seal compares late events against).
    """

    account: str
    container: str
    prefix: str
    location: str
    first_event_id: str
    first_seen: float
    last_seen: float
    blob_count: int = 0
    bytes: int = 0
    marker_time: float | None = None

    @property
    def key(self) -> str:
        return dataset_key(self.account, self.container, self.prefix)

    @property
    def window_id(self) -> uuid.UUID:
        """Stable across restarts, so a re-emit deduplicates on the Prefect server."""
        return uuid.uuid5(TAOFLOW_NAMESPACE, f"{self.key}|{self.first_event_id}")

    def due(self, now: float, quiet_seconds: float) -> str | None:
        if self.marker_time is not None:
            return "marker"
        if now - self.last_seen >= quiet_seconds:
            return "quiet"
        return None

    def to_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.__slots__}

    @classmethod
    def from_dict(cls, data: dict) -> "Window":
        return cls(**{name: data[name] for name in cls.__slots__ if name in data})


def dataset_key(account: str, container: str, prefix: str) -> str:
    return f"{account}/{container}/{prefix}"


def dataset_location(endpoint: str, container: str, prefix: str) -> str:
    """The dataset's URL (what a TrainRequest location takes): the account endpoint, container and prefix.

    >>> dataset_location("http://127.0.0.1:10000/devstoreaccount1", "data", "in/a b")
    'http://127.0.0.1:10000/devstoreaccount1/data/in/a%20b/'
    """
    tail = f"/{quote(prefix, safe='/')}/" if prefix else "/"
    return f"{endpoint}/{container}{tail}"


def endpoint_of(location: str, container: str, prefix: str) -> str:
    """The account endpoint a `dataset_location` was built from (windows store only the location).

    >>> endpoint_of("https://a.blob.core.usgovcloudapi.net/data/in/x/", "data", "in/x")
    'https://a.blob.core.usgovcloudapi.net'
    """
    suffix = dataset_location("", container, prefix)
    if not location.endswith(suffix):
        raise ValueError(f"{location!r} is not a location of {container}/{prefix}")
    return location[: -len(suffix)]
