"""Where the debouncer keeps pending windows, seals, seen event ids and counters.

`SQLiteStore` is the bridge's: a crash or restart loses nothing that was acknowledged,
because the receiver answers 200 only after the delivery is committed here. `MemoryStore`
is the polling flow's: its state is small and goes to a Prefect block between runs.
Both are used only inside `transaction()`, which also serialises the receiver's threads.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import replace
from pathlib import Path
from typing import Iterable, Iterator, Protocol

from tasks.errors import ConfigError, StoreUnavailable
from tasks.events.model import COUNTERS, Window

#: Event Grid gives up on an event after 24 h; ids older than twice that cannot come back.
SEEN_TTL_SECONDS = 48 * 3600


class Store(Protocol):
    def transaction(self) -> AbstractContextManager[None]: ...
    def remember(self, event_ids: Iterable[str], now: float) -> set[str]: ...
    def window(self, key: str) -> Window | None: ...
    def put(self, window: Window) -> None: ...
    def remove(self, key: str) -> None: ...
    def pending(self) -> list[Window]: ...
    def seal(self, key: str) -> float | None: ...
    def set_seal(self, key: str, marker_time: float) -> None: ...
    def bump(self, counts: dict[str, int]) -> None: ...
    def counters(self) -> dict[str, int]: ...


class MemoryStore:
    """Plain dicts; `to_dict`/`from_dict` carry everything but the seen ids between runs."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.windows: dict[str, Window] = {}
        self.seals: dict[str, float] = {}
        self.seen: set[str] = set()
        self.totals: dict[str, int] = dict.fromkeys(COUNTERS, 0)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._lock:
            yield

    def remember(self, event_ids: Iterable[str], now: float) -> set[str]:
        fresh = set(event_ids) - self.seen
        self.seen |= fresh
        return fresh

    def window(self, key: str) -> Window | None:
        # Copies, as SQLite gives: the debouncer compares a sent snapshot with the live window.
        found = self.windows.get(key)
        return replace(found) if found else None

    def put(self, window: Window) -> None:
        self.windows[window.key] = window

    def remove(self, key: str) -> None:
        self.windows.pop(key, None)

    def pending(self) -> list[Window]:
        return [replace(w) for w in self.windows.values()]

    def seal(self, key: str) -> float | None:
        return self.seals.get(key)

    def set_seal(self, key: str, marker_time: float) -> None:
        self.seals[key] = marker_time

    def bump(self, counts: dict[str, int]) -> None:
        for name, value in counts.items():
            self.totals[name] = self.totals.get(name, 0) + value

    def counters(self) -> dict[str, int]:
        return dict(self.totals)

    def to_dict(self) -> dict:
        return {
            "windows": [w.to_dict() for w in self.windows.values()],
            "seals": dict(self.seals),
            "counters": dict(self.totals),
        }

    @classmethod
    def from_dict(cls, data: dict | None) -> "MemoryStore":
        store = cls()
        data = data or {}
        store.windows = {w.key: w for w in (Window.from_dict(item) for item in data.get("windows", []))}
        store.seals = {str(k): float(v) for k, v in data.get("seals", {}).items()}
        store.bump({str(k): int(v) for k, v in data.get("counters", {}).items()})
        return store


_SCHEMA = """
CREATE TABLE IF NOT EXISTS seen (id TEXT PRIMARY KEY, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS windows (key TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS seals (key TEXT PRIMARY KEY, marker_time REAL NOT NULL);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS seen_at ON seen (at);
"""


class SQLiteStore:
    """One SQLite file in the state dir, WAL mode, one connection guarded by a lock."""

    FILENAME = "taoflow-events.sqlite3"

    def __init__(self, state_dir: str | Path) -> None:
        directory = Path(state_dir).expanduser()
        try:
            directory.mkdir(parents=True, exist_ok=True)
            self.path = directory / self.FILENAME
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode survives a process crash; only a power cut can drop the last commit.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(
                f"cannot open the event state store: {exc}",
                where=str(directory),
                fix="give --state-dir a writable directory of its own",
            ) from None
        self._lock = threading.RLock()
        self._depth = 0
        self._last_prune = 0.0

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One SQLite transaction; any SQLite failure inside is a `StoreUnavailable`."""
        with self._lock:
            outer = self._depth == 0
            try:
                if outer:
                    self._db.execute("BEGIN IMMEDIATE")
                self._depth += 1
                try:
                    yield
                except BaseException:
                    if outer:
                        with suppress(sqlite3.Error):
                            self._db.execute("ROLLBACK")
                    raise
                finally:
                    self._depth -= 1
                if outer:
                    self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StoreUnavailable(
                    f"the event state store failed: {exc.__class__.__name__}: {exc}",
                    where=str(self.path),
                    fix="check the disk and permissions of --state-dir; the sender redelivers meanwhile",
                ) from None

    def remember(self, event_ids: Iterable[str], now: float) -> set[str]:
        fresh: set[str] = set()
        for event_id in dict.fromkeys(event_ids):
            cursor = self._db.execute("INSERT OR IGNORE INTO seen (id, at) VALUES (?, ?)", (event_id, now))
            if cursor.rowcount:
                fresh.add(event_id)
        if now - self._last_prune > 600:
            self._db.execute("DELETE FROM seen WHERE at < ?", (now - SEEN_TTL_SECONDS,))
            self._last_prune = now
        return fresh

    def window(self, key: str) -> Window | None:
        row = self._db.execute("SELECT body FROM windows WHERE key = ?", (key,)).fetchone()
        return Window.from_dict(json.loads(row[0])) if row else None

    def put(self, window: Window) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO windows (key, body) VALUES (?, ?)", (window.key, json.dumps(window.to_dict()))
        )

    def remove(self, key: str) -> None:
        self._db.execute("DELETE FROM windows WHERE key = ?", (key,))

    def pending(self) -> list[Window]:
        return [Window.from_dict(json.loads(body)) for (body,) in self._db.execute("SELECT body FROM windows")]

    def seal(self, key: str) -> float | None:
        row = self._db.execute("SELECT marker_time FROM seals WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_seal(self, key: str, marker_time: float) -> None:
        self._db.execute("INSERT OR REPLACE INTO seals (key, marker_time) VALUES (?, ?)", (key, marker_time))

    def bump(self, counts: dict[str, int]) -> None:
        for name, value in counts.items():
            if value:
                self._db.execute(
                    "INSERT INTO counters (name, value) VALUES (?, ?) "
                    "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
                    (name, value),
                )

    def counters(self) -> dict[str, int]:
        totals = dict.fromkeys(COUNTERS, 0)
        totals.update(dict(self._db.execute("SELECT name, value FROM counters")))
        return totals

