"""The champion pointer (`OUTPUT/MODEL_APP_NAME/champion.json`): read with a version token, replaced
by compare-and-swap. The only code that writes it; the lead can re-point it at `tasks.storage`'s
publication locks once they land.

- Readers never see half of it: a local file is replaced by rename, a blob by one Put Blob.
- Two runs promoting at once cannot corrupt it or lose an update: a writer holds a lock (a lease
  on the `.champion.lock` blob, `flock` on the local `.champion.lock`), checks that the pointer is
  still the one it evaluated against (its version token: the blob's ETag, the local file's SHA-256)
  and only then replaces it (for a blob also conditionally, `If-Match` / `If-None-Match: *`). A
  writer killed while holding the lock leaves the pointer as it was: the kernel drops a `flock`, a
  lease expires after `LEASE_SECONDS`.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Literal

from tasks.files import write_atomic
from tasks.storage import StorageAccess, open_store, parse_location
from tasks.storage.azure_errors import azure_errors
from tasks.storage.stores import BlobStore, LocalStore

POINTER_FILE = "champion.json"
LOCK_FILE = ".champion.lock"
#: A promotion holds the lock for one read and one write; a killed holder's lease runs out after this.
LEASE_SECONDS = 30
#: A pointer is a few hundred bytes.
MAX_POINTER_BYTES = 1 << 20
SwapResult = Literal["swapped", "changed", "busy"]


@dataclass(frozen=True)
class PointerRead:
    """The pointer's bytes (None: no champion yet) and the token a swap must match."""

    data: bytes | None
    token: str | None


def read_pointer(app_location: str, access: StorageAccess | None = None) -> PointerRead:
    """The current pointer of the registry at `app_location` (OUTPUT/MODEL_APP_NAME).

    >>> import tempfile
    >>> read_pointer(tempfile.mkdtemp())
    PointerRead(data=None, token=None)
    """
    store = open_store(app_location, access)
    if isinstance(store, BlobStore):
        return _blob_read(store)
    return _local_read(Path(store.location.path))


def _token(data: bytes | None) -> PointerRead:
    return PointerRead(data, hashlib.sha256(data).hexdigest() if data is not None else None)


def swap_pointer(app_location: str, data: bytes, expected: str | None, access: StorageAccess | None = None,
                 *, wait: float = 120.0) -> SwapResult:
    """Replace the pointer with `data` if its token is still `expected` (None: there must be none).

    "changed": another run replaced it since `expected` was read, nothing written; "busy": the lock
    was held by another writer for `wait` seconds.

    >>> import tempfile
    >>> app = tempfile.mkdtemp()
    >>> swap_pointer(app, b'{"version": "r1"}', None), swap_pointer(app, b'{"version": "r2"}', None)
    ('swapped', 'changed')
    """
    store = open_store(app_location, access)
    if isinstance(store, BlobStore):
        return _blob_swap(store, data, expected, wait)
    return _local_swap(Path(store.location.path), data, expected, wait)


# --- local: rename under flock ----------------------------------------------------------------


def _local_read(root: Path) -> PointerRead:
    return _token(LocalStore(parse_location(str(root))).read(POINTER_FILE, MAX_POINTER_BYTES))


@contextmanager
def _flock(root: Path, wait: float) -> Iterator[bool]:
    """Hold the registry's lock file (True), or give up after `wait` seconds (False)."""
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    try:
        held = _take(fd, wait)
        try:
            yield held
        finally:
            if held:
                fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _take(fd: int, wait: float) -> bool:
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.2)


def _local_swap(root: Path, data: bytes, expected: str | None, wait: float) -> SwapResult:
    with _flock(root, wait) as held:
        if not held:
            return "busy"
        if _local_read(root).token != expected:
            return "changed"
        write_atomic(root / POINTER_FILE, data, durable=True)
        return "swapped"


# --- blob: conditional Put Blob under a lease -------------------------------------------------


def _blob_read(store: BlobStore) -> PointerRead:
    found = store.read_tagged(POINTER_FILE, MAX_POINTER_BYTES)
    return PointerRead(*found) if found is not None else PointerRead(None, None)


def _blob_swap(store: BlobStore, data: bytes, expected: str | None, wait: float) -> SwapResult:
    from azure.core import MatchConditions
    from azure.core.exceptions import HttpResponseError, ResourceExistsError

    lock = store._blob(LOCK_FILE)  # noqa: SLF001
    with azure_errors(store.target, "taking the champion lock"):
        try:
            lock.upload_blob(b"", overwrite=False)
        except (ResourceExistsError, HttpResponseError) as exc:
            if getattr(exc, "status_code", None) not in (409, 412):
                raise
        deadline = time.monotonic() + wait
        lease = None
        while lease is None:
            try:
                lease = lock.acquire_lease(lease_duration=LEASE_SECONDS)
            except HttpResponseError as exc:
                if exc.status_code != 409:
                    raise
                if time.monotonic() >= deadline:
                    return "busy"
                time.sleep(0.5)
    try:
        if _blob_read(store).token != expected:
            return "changed"
        condition = (dict(etag=expected, match_condition=MatchConditions.IfNotModified) if expected
                     else dict(match_condition=MatchConditions.IfMissing))
        with azure_errors(store.target, f"writing {POINTER_FILE}"):
            try:
                store._blob(POINTER_FILE).upload_blob(data, overwrite=True, **condition)  # noqa: SLF001
            except (ResourceExistsError, HttpResponseError) as exc:
                if getattr(exc, "status_code", None) in (409, 412):
                    return "changed"
                raise
        return "swapped"
    finally:
        with azure_errors(store.target, "releasing the champion lock"):
            try:
                lease.release()
            except HttpResponseError:
                pass  # expired already: nothing to release
