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

    >>> is_published("az://models/parking/2026-11-25")  # doctest: +SKIP
    True
    """
    store = open_store(location, access)
    data = store.read(PUBLISHED_MARKER, MAX_MARKER_BYTES)
    return data is not None and parse_published(data) is not None


def content_fingerprint(location: str | Path | Location, access: StorageAccess | None = None) -> str:
    """A hash of what a reader would download (names, sizes, MD5s/etags): a cache key for the flow.

    >>> content_fingerprint("/data/kitti")  # doctest: +SKIP
    '3f2a...'
    """
    return listing_fingerprint(location, access)[0]


def listing_fingerprint(location: str | Path | Location, access: StorageAccess | None = None):
    """(fingerprint, what was not followed) of a location: `content_fingerprint` plus the local
    symlinks and special files it left out.

    >>> listing_fingerprint("/data/kitti")  # doctest: +SKIP
    ('3f2a...', ('images/extra.png (symlink -> /mnt/other/extra.png)',))
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
