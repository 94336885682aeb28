"""Sync up: publish a local results folder at a location, atomically for readers.

Order: take the right to publish (tasks.storage.locks) -> delete the published marker -> upload
what differs -> list again and check every file arrived -> write the published marker (sizes and
MD5s) -> drop the publishing marker. Files
are read without following symlinks; symlinks and special files are left out with a notice.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import replace
from pathlib import Path

from tasks.errors import ConfigError, NotRegularFile, Problem, TransientStorageError
from tasks.storage import transfer
from tasks.storage.access import StorageAccess, open_store
from tasks.storage.locations import Location, parse_location
from tasks.storage.manifest import (
    MARKERS,
    MAX_MARKER_BYTES,
    PUBLISHED_MARKER,
    fingerprint,
    parse_published,
    published_document,
)
from tasks.storage.names import name_problem, printable
from tasks.storage.stores import Entry, Listing, LocalStore, Store, stream_md5
from tasks.storage.visibility import not_followed


def _local_files(source: LocalStore) -> tuple[dict[str, Entry], Listing]:
    if not source.root.is_dir():
        raise ConfigError(f"{source.root} is not a directory", fix="give the folder holding the results to upload")
    listing = source.list()
    entries = {n: e for n, e in listing.entries.items() if n.rpartition("/")[2] not in MARKERS}
    problems = [
        Problem("unsafe-file-name", f"{printable(n)}: {why}")
        for n in sorted(entries) if (why := name_problem(n)) is not None
    ]
    if problems:
        raise ConfigError(f"{len(problems)} file name(s) cannot be blob names", where=str(source.root),
                          problems=problems[:20], fix="rename those files")
    return entries, listing


def _check_arrived(store: Store, local: dict[str, Entry], md5s: dict[str, str]) -> None:
    """List the target once more before sealing it: the marker must describe what is there.

    One listing (a request per 5,000 files) per publication; it catches a write the service
    acknowledged and then lost (an emulator killed mid-upload does that) or a blob replaced by
    someone outside the protocol. The retry then uploads only what is missing.
    """
    there = store.list().entries
    wrong = [n for n in sorted(local) if n not in there or there[n].size != local[n].size
             or (there[n].md5 is not None and there[n].md5 != md5s[n])]
    if wrong:
        raise TransientStorageError(
            f"{len(wrong)} uploaded file(s) are missing or differ at the target after the upload, e.g. "
            f"{printable(wrong[0])}; the completion marker was not written",
            where=store.location.display,
            fix="run the upload again (the step retries it by itself): it uploads only what is missing",
        )


def _published(store: Store, listing: Listing) -> dict[str, tuple[int, str]] | None:
    if PUBLISHED_MARKER not in listing.entries:
        return None
    return parse_published(store.read(PUBLISHED_MARKER, MAX_MARKER_BYTES) or b"")


def sync_up(
    src_dir: str | Path,
    location: str | Path | Location,
    *,
    access: StorageAccess | None = None,
    concurrency: int = transfer.DEFAULT_CONCURRENCY,
    on_progress: transfer.ProgressFn | None = None,
    notice: transfer.NoticeFn | None = None,
    lock_wait: float = transfer.LOCK_WAIT_SECONDS,
) -> transfer.SyncReport:
    """Publish `src_dir` at the location: unchanged blobs skipped, the published marker written last.

    One publisher at a time per location (a second waits up to `lock_wait` s, then `StorageBusyError`).

    >>> import tempfile; work = Path(tempfile.mkdtemp()); (work / "results" / "weights").mkdir(parents=True)
    >>> _ = (work / "results" / "weights" / "detector.hdf5").write_bytes(b"weights")
    >>> report = sync_up(work / "results", work / "models" / "v1")
    >>> report.files_transferred, report.published, sorted(p.name for p in (work / "models" / "v1").iterdir())
    (1, True, ['_taoflow_published.json', 'weights'])
    >>> sync_up(work / "results", work / "models" / "v1").files_skipped  # nothing changed: nothing is sent
    1
    """
    started = time.perf_counter()
    source = LocalStore(parse_location(Path(src_dir).absolute()))
    local, listing = _local_files(source)
    loc = parse_location(location)
    if loc.kind == "local":
        loc.path.mkdir(parents=True, exist_ok=True)
    store = open_store(loc, access, pool_size=concurrency + 4)
    remote = store.list()
    if remote.single:
        raise ConfigError("the upload target is a single blob, not a folder", where=store.location.display,
                          fix="choose a folder (prefix) as the target")
    md5s: dict[str, str] = {}

    def hash_file(name: str) -> None:
        with source.open(name) as handle:
            md5s[name] = stream_md5(handle)

    transfer.run_parallel(sorted(local), hash_file, concurrency)
    wanted = {n: (local[n].size, md5s[n]) for n in local}
    hashed = {n: replace(e, md5=md5s[n]) for n, e in local.items()}
    report = transfer.SyncReport("up", str(source.root), store.location.display, files_total=len(local),
                        bytes_total=sum(e.size for e in local.values()), fingerprint=fingerprint(hashed),
                        not_followed=not_followed(listing, notice))

    if _published(store, remote) != wanted:
        body = json.dumps({"files": len(local), "started": time.time(), "pid": os.getpid(),
                           "host": socket.gethostname()}).encode()
        with store.publication(body, lock_wait, notice) as publication:
            remote = store.list()  # again, under the lock: the last publisher may have changed it
            if _published(store, remote) != wanted:
                todo = [n for n in sorted(local) if not (
                    n in remote.entries and remote.entries[n].md5 == md5s[n] and remote.entries[n].size == local[n].size
                )]
                tracker = transfer.ProgressTracker(len(todo), sum(local[n].size for n in todo), on_progress)

                def upload(name: str) -> None:
                    with source.open(name) as data:
                        size = os.fstat(data.fileno()).st_size
                        if size != local[name].size:
                            raise NotRegularFile(f"{name} changed size while it was being published; it was not "
                                                 "uploaded", where=str(source.root),
                                                 fix="make sure nothing writes to the folder, then run again")
                        store.put(data, size, name, md5s[name])
                    tracker.advance(name, local[name].size)

                # Readers must stop trusting the old content before any of it changes.
                publication.changing()
                store.delete(PUBLISHED_MARKER)
                tracker.start()
                transfer.run_parallel(todo, upload, concurrency)
                _check_arrived(store, local, md5s)
                publication.confirm()
                store.write(PUBLISHED_MARKER, published_document(wanted))
                report.files_transferred, report.bytes_transferred = len(todo), tracker.bytes_done
            publication.finish()
    report.files_skipped = report.files_total - report.files_transferred
    report.published = True
    report.seconds = time.perf_counter() - started
    return report
