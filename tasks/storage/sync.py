"""Sync down (remote -> local cache) and sync up (results -> remote, atomic for readers), and the
two questions readers ask of a location (is it published, what is its content's fingerprint).

The work lives in `download`, `upload` and `visibility`; this module is the one place callers
import them from.
"""

from __future__ import annotations

from pathlib import Path

from tasks.storage.access import StorageAccess, open_store
from tasks.storage.download import materialize, sync_down
from tasks.storage.locations import Location
from tasks.storage.manifest import MAX_MARKER_BYTES, PUBLISHED_MARKER, SYNC_MANIFEST, fingerprint, parse_published
from tasks.storage.transfer import DEFAULT_CONCURRENCY
from tasks.storage.upload import sync_up
from tasks.storage.visibility import check_names, readable_entries


def is_published(location: str | Path | Location, access: StorageAccess | None = None) -> bool:
    """True when the location holds a complete, published upload (its marker is present and sound).

    >>> import tempfile; work = Path(tempfile.mkdtemp()); (work / "results").mkdir()
    >>> _ = (work / "results" / "model.hdf5").write_bytes(b"weights")
    >>> is_published(work / "results")  # a folder being written, or never published
    False
    >>> _ = sync_up(work / "results", work / "models" / "v1")
    >>> is_published(work / "models" / "v1")
    True
    """
    store = open_store(location, access)
    data = store.read(PUBLISHED_MARKER, MAX_MARKER_BYTES)
    return data is not None and parse_published(data) is not None


def content_fingerprint(location: str | Path | Location, access: StorageAccess | None = None) -> str:
    """A hash of what a reader would download (names, sizes, MD5s/etags): a cache key for the flow.

    >>> import tempfile; data = Path(tempfile.mkdtemp())
    >>> _ = (data / "000001.txt").write_text("Car 0 0 0 1 2 30 40 0 0 0 0 0 0 0")
    >>> before = content_fingerprint(data)
    >>> content_fingerprint(data) == before, len(before)
    (True, 64)
    >>> _ = (data / "000002.txt").write_text("Pedestrian 0 0 0 1 2 3 4 0 0 0 0 0 0 0")
    >>> content_fingerprint(data) == before
    False
    """
    return listing_fingerprint(location, access)[0]


def listing_fingerprint(location: str | Path | Location, access: StorageAccess | None = None):
    """(fingerprint, what was not followed) of a location: `content_fingerprint` plus the local
    symlinks and special files it left out.

    >>> import os, tempfile; data = Path(tempfile.mkdtemp())
    >>> _ = (data / "a.png").write_bytes(b"png"); os.symlink("/mnt/other/extra.png", data / "extra.png")
    >>> listing_fingerprint(data)[1]
    ('extra.png (symlink -> /mnt/other/extra.png)',)
    """
    store = open_store(location, access)
    listing = store.list()
    entries, _, _ = readable_entries(store, listing.entries)
    return fingerprint(entries), tuple(item.render() for item in listing.not_followed)


__all__ = [
    "DEFAULT_CONCURRENCY",
    "SYNC_MANIFEST",
    "check_names",
    "content_fingerprint",
    "is_published",
    "listing_fingerprint",
    "materialize",
    "readable_entries",
    "sync_down",
    "sync_up",
]
