"""A burst of uploads under one dataset prefix -> exactly one dataset-ready event.

A window opens with the first accepted blob of a dataset and is *due* once no blob has
arrived for `quiet_seconds`, or at once when the marker blob lands at the dataset root.
Event Grid delivers at least once and in any order, so:
- every event id is remembered; a redelivery is counted as a duplicate and nothing more;
- the marker *seals* the dataset: a straggler whose event time is not after the marker's is
  counted as `late` and folded into the dataset already announced, not a new window;
- an event time later than this host's clock plus `max_clock_skew_seconds` counts as that
  bound, so a marker dated in the future seals its dataset for minutes, not forever.
A window leaves the store only after the Prefect API took its event; until then every
flush sends it again (same id, so the server keeps one).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Protocol

from tasks.errors import ConfigError
from tasks.events.emitter import EmitError, dataset_ready_event
from tasks.events.model import BlobCreated, Window, dataset_key, dataset_location
from tasks.events.rules import DEFAULT_RULES, PrefixRule, dataset_prefix
from tasks.events.store import Store

#: Back-off between failed emits: 1 s doubling to at most 60 s.
MAX_BACKOFF_SECONDS = 60.0


class Emitter(Protocol):
    def emit(self, events: list[dict]) -> None: ...


@dataclass(frozen=True)
class DebounceSettings:
    """How uploads are grouped into datasets and when a dataset counts as complete."""

    rules: tuple[PrefixRule, ...] = field(default_factory=lambda: tuple(PrefixRule.parse(r) for r in DEFAULT_RULES))
    quiet_seconds: float = 300.0
    marker: str = "_READY"
    source: str = "eventgrid"
    #: How far an event's own time may run ahead of this host's clock before it is clamped.
    max_clock_skew_seconds: float = 300.0

    def __post_init__(self) -> None:
        if not self.marker or "/" in self.marker or self.marker in {".", ".."}:
            raise ConfigError(
                f"marker {self.marker!r} is not a blob name", where="--marker", fix="give a plain name such as _READY"
            )
        if self.quiet_seconds < 0:
            raise ConfigError(f"quiet window {self.quiet_seconds} s is negative", where="--quiet-seconds")
        if self.max_clock_skew_seconds < 0:
            raise ConfigError(f"clock skew {self.max_clock_skew_seconds} s is negative", where="--max-clock-skew")

    def is_marker(self, prefix: str, blob: str) -> bool:
        return blob == (f"{prefix}/{self.marker}" if prefix else self.marker)


@dataclass
class FlushResult:
    emitted: list[dict] = field(default_factory=list)
    error: EmitError | None = None


class Debouncer:
    def __init__(self, store: Store, settings: DebounceSettings) -> None:
        self.store = store
        self.settings = settings
        self._failures = 0
        self._retry_at = 0.0
        self.last_error: str | None = None

    def ingest(self, blobs: Iterable[BlobCreated], *, ignored: int = 0, now: float) -> dict[str, int]:
        """Record one delivery atomically; returns this delivery's counts."""
        blobs = list(blobs)
        counts = dict(received=len(blobs) + ignored, accepted=0, filtered=ignored, duplicates=0, late=0)
        with self.store.transaction():
            fresh = self.store.remember((b.event_id for b in blobs), now)
            for blob in blobs:
                if blob.event_id not in fresh:
                    counts["duplicates"] += 1
                    continue
                fresh.discard(blob.event_id)  # a second copy in the same body is a duplicate too
                counts[self._place(blob, now)] += 1
            counts["accepted"] += counts["late"]
            self.store.bump(counts)
        return counts

    def _place(self, blob: BlobCreated, now: float) -> str:
        prefix = dataset_prefix(self.settings.rules, blob.container, blob.blob)
        if prefix is None:
            return "filtered"
        key = dataset_key(blob.account, blob.container, prefix)
        is_marker = self.settings.is_marker(prefix, blob.blob)
        horizon = now + self.settings.max_clock_skew_seconds
        event_time = min(blob.time.timestamp(), horizon)
        seal = self.store.seal(key)
        if seal is not None and seal > horizon:
            seal = None  # set from a future-dated marker by an older version: it must not seal forever
        window = self.store.window(key)
        if window is None and seal is not None and event_time <= seal:
            return "late"
        if window is None:
            location = dataset_location(blob.endpoint, blob.container, prefix)
            window = Window(blob.account, blob.container, prefix, location, blob.event_id, now, now)
        window.blob_count += 1
        window.bytes += blob.content_length
        window.last_seen = max(window.last_seen, now)
        if is_marker:
            window.marker_time = max(window.marker_time or event_time, event_time)
        self.store.put(window)
        return "accepted"

    def due(self, now: float) -> list[tuple[Window, str]]:
        with self.store.transaction():
            windows = self.store.pending()
        found = ((w, w.due(now, self.settings.quiet_seconds)) for w in windows)
        return [(w, reason) for w, reason in found if reason]

    def flush(self, emitter: Emitter, now: float) -> FlushResult:
        """Send every due window; on failure keep them all and back off."""
        if now < self._retry_at:
            return FlushResult()
        due = self.due(now)
        if not due:
            return FlushResult()
        events = [
            dataset_ready_event(w, reason, marker=self.settings.marker, source=self.settings.source)
            for w, reason in due
        ]
        try:
            emitter.emit(events)
        except EmitError as exc:
            self._failures += 1
            self._retry_at = now + min(MAX_BACKOFF_SECONDS, 2.0 ** (self._failures - 1))
            self.last_error = exc.what
            return FlushResult(error=exc)
        self._failures, self._retry_at, self.last_error = 0, 0.0, None
        with self.store.transaction():
            late = sum(self._close(snapshot) for snapshot, _ in due)
            self.store.bump({"emitted": len(events), "late": late})
        return FlushResult(emitted=events)

    def _close(self, sent: Window) -> int:
        """Retire a sent window; returns how many blobs that arrived during the POST became `late`.

        Blobs that landed between `due()` and here were not in the event: after a marker they
        belong to the sealed dataset; after a quiet window they open the next window.
        """
        current = self.store.window(sent.key) or sent
        self.store.remove(sent.key)
        if sent.marker_time is not None:
            self.store.set_seal(sent.key, max(sent.marker_time, current.marker_time or sent.marker_time))
            return current.blob_count - sent.blob_count
        extra = current.blob_count - sent.blob_count
        if extra:
            rest = Window(
                sent.account, sent.container, sent.prefix, sent.location,
                f"{sent.first_event_id}+{sent.blob_count}", sent.last_seen, current.last_seen,
                extra, current.bytes - sent.bytes, current.marker_time,
            )
            self.store.put(rest)
        return 0
