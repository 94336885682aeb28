"""Sync down: make a local folder an exact copy of a location, transferring only what changed.

Local sources are *copied* (the target is then a stable snapshot, like a remote one); a caller
that would rather use a local dataset in place calls `materialize`, which copies only remote data.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import BinaryIO

from tasks.errors import StorageNotFoundError
from tasks.storage.access import StorageAccess, open_store
from tasks.storage.azure_errors import local_write_error
from tasks.storage.localfs import LocalTree
from tasks.storage.locations import Location, parse_location
from tasks.storage.manifest import Journal, LocalRecord, SyncManifest, fingerprint
from tasks.storage.names import name_problem
from tasks.storage.ranged import RangedDownload, damaged, range_count
from tasks.storage.staging import Staging
from tasks.storage.stores import Entry
from tasks.storage.transfer import (
    DEFAULT_CONCURRENCY,
    LOCK_WAIT_SECONDS,
    NoticeFn,
    ProgressFn,
    ProgressTracker,
    SyncReport,
    run_parallel,
)
from tasks.storage.visibility import check_names, not_followed, readable_entries


def sync_down(
    location: str | Path | Location,
    dest_dir: str | Path,
    *,
    access: StorageAccess | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    require_published: bool = False,
    on_progress: ProgressFn | None = None,
    notice: NoticeFn | None = None,
    lock_wait: float = LOCK_WAIT_SECONDS,
) -> SyncReport:
    """Make `dest_dir` an exact copy of the location (a prefix, or one blob/file), transferring only changes.

    One sync at a time per `dest_dir` (a second waits up to `lock_wait` s, then `StorageBusyError`);
    progress is journalled, so a sync killed at any point is resumed by the next one.

    >>> import tempfile; work = Path(tempfile.mkdtemp()); (work / "kitti" / "label_2").mkdir(parents=True)
    >>> _ = (work / "kitti" / "label_2" / "000001.txt").write_text("Car 0 0 0 1 2 30 40 0 0 0 0 0 0 0")
    >>> sync_down(work / "kitti", work / "cache").files_transferred
    1
    >>> sync_down(work / "kitti", work / "cache").files_skipped  # unchanged since: skipped
    1
    >>> (work / "cache" / "label_2" / "000001.txt").read_text()[:3]
    'Car'
    """
    started = time.perf_counter()
    store = open_store(location, access, pool_size=concurrency + 4)
    dest = Path(dest_dir).absolute()
    tree = LocalTree(dest)
    with tree.lock(lock_wait, notice):
        tree.clear_staging()  # temporaries of a sync that was killed; only the lock holder may do this
        listing = store.list()
        entries, published, ignored = readable_entries(store, listing.entries, require_published=require_published)
        check_names(entries, store.location.display)
        manifest = SyncManifest.load(dest)
        if manifest.source != store.location.display:
            manifest.source, manifest.dirty = store.location.display, True
        root = str(dest)
        todo = [e for e in entries.values() if not manifest.is_current(e, os.path.join(root, e.name))]
        report = SyncReport(
            "down", store.location.display, str(dest), files_total=len(entries),
            bytes_total=sum(e.size for e in entries.values()), published=published,
            single_file=listing.single, ignored_unpublished=ignored, fingerprint=fingerprint(entries),
            not_followed=not_followed(listing, notice),
        )
        tracker = ProgressTracker(len(todo), sum(e.size for e in todo), on_progress)
        lock = threading.Lock()
        where = store.location.display

        def fetch_checked(entry: Entry, out: BinaryIO) -> str:
            md5 = store.fetch(entry, out)
            if entry.md5 and md5 != entry.md5:
                raise damaged(entry.name, md5, entry.md5, where)
            return md5

        def transfer(job: tuple[Entry, RangedDownload | None, int]) -> None:
            entry, ranged, index = job
            try:
                if ranged is None:
                    md5, written = staging.write(entry.name, None, lambda _, out: fetch_checked(entry, out))
                else:
                    done = ranged.run(index, lambda start, length, out: store.fetch_range(entry, start, length, out))
                    tracker.advance(entry.name, ranged.ranges[index][1], files=0)
                    if not done:
                        return
                    md5, written = ranged.finish()
                    staging.place(ranged.temp, entry.name)
            except OSError as exc:
                raise local_write_error(exc, str(dest / entry.name), f"writing {entry.name}") from exc
            record = LocalRecord(entry.size, entry.etag, md5, written.st_mtime_ns)
            with lock:
                manifest.files[entry.name] = record
                manifest.dirty = True
                journal.record(entry.name, record)  # after the rename: a journalled file is in place
            tracker.advance(entry.name, 0 if ranged else entry.size)

        ranged_downloads: list[RangedDownload] = []
        try:
            for name in [n for n in manifest.files if n not in entries]:
                if name_problem(name) is None and tree.unlink(name):
                    report.files_deleted += 1
                manifest.files.pop(name)
                manifest.dirty = True
            tracker.start()
            if todo:
                with Journal(dest) as journal, Staging(tree.root) as staging:
                    jobs: list[tuple[Entry, RangedDownload | None, int]] = []
                    for entry in todo:
                        if range_count(entry.size, store.range_size) == 1:
                            jobs.append((entry, None, 0))
                            continue
                        ranged = RangedDownload(entry.size, store.range_size, md5=entry.md5, name=entry.name,
                                                where=where, create=staging.temporary)
                        ranged_downloads.append(ranged)
                        jobs.extend((entry, ranged, index) for index in ranged.parts)
                    run_parallel(jobs, transfer, concurrency)
        finally:
            for ranged in ranged_downloads:
                ranged.close()
            if manifest.dirty:
                manifest.save(dest)  # also after a failure: a retry then skips what already arrived
            tree.clear_staging()
    report.files_transferred = len(todo)
    report.files_skipped = len(entries) - len(todo)
    report.bytes_transferred = tracker.bytes_done
    report.seconds = time.perf_counter() - started
    return report


def materialize(location: str | Path | Location, dest_dir: str | Path, **kwargs) -> Path:
    """A local directory (or file) with the location's content: local data in place, remote data synced.

    >>> import tempfile; data = Path(tempfile.mkdtemp())
    >>> materialize(data, data.parent / "unused") == data  # local data is used where it is
    True
    """
    loc = parse_location(location)
    if loc.kind == "local":
        if not loc.path.exists():
            raise StorageNotFoundError(f"{loc.path} does not exist", fix="check the local path")
        return loc.path
    report = sync_down(loc, dest_dir, **kwargs)
    dest = Path(dest_dir).absolute()
    return dest / next(iter(SyncManifest.load(dest).files)) if report.single_file else dest
