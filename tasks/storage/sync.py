"""Sync down (remote -> local cache) and sync up (results -> remote, atomic for readers).

Local locations are supported on both sides. `sync_down` of a local source *copies* (the
target is then a stable snapshot, like a remote one); a caller that would rather use a local
dataset in place calls `materialize`, which copies only remote data.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path

from tasks.errors import ConfigError, Problem, StorageError, StorageNotFoundError, TransientStorageError
from tasks.storage.access import StorageAccess, open_store
from tasks.storage.locations import Location, parse_location
from tasks.storage.manifest import (
    MARKERS,
    PUBLISHED_MARKER,
    PUBLISHING_MARKER,
    RESERVED_LOCAL,
    STAGING_DIR,
    SYNC_MANIFEST,
    LocalRecord,
    SyncManifest,
    fingerprint,
    parse_published,
    published_document,
)
from tasks.storage.names import name_problem, printable
from tasks.storage.stores import Entry, LocalStore, Store, file_md5
from tasks.storage.transfer import ProgressFn, ProgressTracker, SyncReport, run_parallel

DEFAULT_CONCURRENCY = 16


# --- what a reader may see -------------------------------------------------------------------


def _marker_dirs(entries: dict[str, Entry]) -> dict[str, set[str]]:
    """{folder ("" = the root): marker names in it}."""
    found: dict[str, set[str]] = {}
    for name in entries:
        folder, _, base = name.rpartition("/")
        if base in MARKERS:
            found.setdefault(folder, set()).add(base)
    return found


def readable_entries(store: Store, entries: dict[str, Entry], *, require_published: bool = False):
    """The entries a reader may use, whether the root is published, and the folders ignored.

    A folder with a published marker contributes exactly the files the marker lists (with its
    MD5s); a folder with only the "publishing" marker is half-published and is ignored, or
    refused when it is the location itself.
    """
    where = store.location.display
    markers = _marker_dirs(entries)
    root = markers.get("", set())
    if PUBLISHING_MARKER in root and PUBLISHED_MARKER not in root:
        raise StorageNotFoundError(
            "these results are not published: an upload is under way or was interrupted",
            where=where,
            fix="wait for the upload to finish, or re-run the step that publishes them (it resumes)",
        )
    if require_published and PUBLISHED_MARKER not in root:
        raise StorageNotFoundError(
            f"no {PUBLISHED_MARKER} here, so these are not published results",
            where=where,
            fix="point at a results folder written by `taoflow sync up` (or the train flow)",
        )
    readable = {n: e for n, e in entries.items() if n.rpartition("/")[2] not in MARKERS}
    ignored = []
    for folder, names in sorted(markers.items()):
        head = f"{folder}/" if folder else ""
        inside = {n for n in readable if n.startswith(head)}
        if PUBLISHED_MARKER in names:
            doc = parse_published(store.read(head + PUBLISHED_MARKER) or b"")
            if doc is None:
                raise StorageError(f"the marker {head}{PUBLISHED_MARKER} is damaged", where=where,
                                   fix="re-run the publishing step")
            listed = {head + n: v for n, v in doc.items()}
            missing = [n for n, (size, _) in listed.items() if n not in readable or readable[n].size != size]
            if missing:
                raise StorageError(
                    f"the published marker lists {len(missing)} file(s) that are missing or differ, e.g. {missing[0]}",
                    where=where,
                    fix="re-run the publishing step",
                )
            for name in inside - listed.keys():
                readable.pop(name)
            for name, (_, md5) in listed.items():
                readable[name] = replace(readable[name], md5=md5)
        else:
            ignored.append(folder or ".")
            for name in inside:
                readable.pop(name)
    return readable, PUBLISHED_MARKER in root, tuple(ignored)


def check_names(entries: dict[str, Entry], where: str) -> None:
    """Refuse, before anything is written, names that would escape the target or collide."""
    problems = []
    names = set(entries)
    for name in sorted(names):
        why = name_problem(name)
        if why is None and name.split("/", 1)[0] in RESERVED_LOCAL:
            why = "the name is reserved for taoflow's sync bookkeeping"
        if why is None and any(name[: i] in names for i in range(len(name)) if name[i] == "/"):
            why = "a parent of this name is also a blob, so it would be both a file and a folder"
        if why is not None:
            problems.append(Problem("unsafe-blob-name", f"{printable(name)}: {why}", hint="rename or delete the blob"))
    if problems:
        raise StorageError(
            f"{len(problems)} blob name(s) cannot be written safely under the target; nothing was downloaded",
            where=where,
            problems=problems[:20],
            fix="rename or delete those blobs (names must be relative paths without '..', '\\', NUL or control characters)",
        )


# --- down ------------------------------------------------------------------------------------


def _prune_empty_parents(path: Path, root: Path) -> None:
    parent = path.parent
    while parent != root and root in parent.parents:
        try:
            parent.rmdir()
        except OSError:
            return
        parent = parent.parent


def sync_down(
    location: str | Path | Location,
    dest_dir: str | Path,
    *,
    access: StorageAccess | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    require_published: bool = False,
    on_progress: ProgressFn | None = None,
) -> SyncReport:
    """Make `dest_dir` an exact copy of the location (a prefix, or one blob/file), transferring only changes."""
    started = time.perf_counter()
    store = open_store(location, access, pool_size=concurrency + 4)
    dest = Path(dest_dir).absolute()
    listing = store.list()
    entries, published, ignored = readable_entries(store, listing.entries, require_published=require_published)
    check_names(entries, store.location.display)

    dest.mkdir(parents=True, exist_ok=True)
    manifest = SyncManifest.load(dest)
    manifest.source = store.location.display
    staging = dest / STAGING_DIR
    shutil.rmtree(staging, ignore_errors=True)  # leftovers of a killed run
    staging.mkdir()
    todo = [e for e in entries.values() if not manifest.is_current(e, dest.joinpath(*e.name.split("/")))]
    report = SyncReport(
        "down", store.location.display, str(dest), files_total=len(entries),
        bytes_total=sum(e.size for e in entries.values()), published=published,
        single_file=listing.single, ignored_unpublished=ignored, fingerprint=fingerprint(entries),
    )
    tracker = ProgressTracker(len(todo), sum(e.size for e in todo), on_progress)
    lock = threading.Lock()

    def download(entry: Entry) -> None:
        final = dest.joinpath(*entry.name.split("/"))
        temp = staging / uuid.uuid4().hex
        try:
            md5 = store.fetch(entry, temp)
            if entry.md5 and md5 != entry.md5:
                raise TransientStorageError(
                    f"{entry.name} arrived damaged (MD5 {md5}, expected {entry.md5})", where=store.location.display
                )
            try:
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(temp, final)
            except OSError as exc:
                raise StorageError(f"cannot write {final}: {exc}", fix="check the free space and permissions") from exc
        finally:
            temp.unlink(missing_ok=True)
        with lock:
            manifest.files[entry.name] = LocalRecord(entry.size, entry.etag, md5, final.stat().st_mtime_ns)
        tracker.advance(entry.name, entry.size)

    try:
        for name in [n for n in manifest.files if n not in entries]:
            path = dest.joinpath(*name.split("/"))
            if name_problem(name) is None and path.is_file():
                path.unlink()
                _prune_empty_parents(path, dest)
                report.files_deleted += 1
            manifest.files.pop(name)
        tracker.start()
        run_parallel(todo, download, concurrency)
    finally:
        manifest.save(dest)  # also after a failure: a retry then skips what already arrived
        shutil.rmtree(staging, ignore_errors=True)
    report.files_transferred = len(todo)
    report.files_skipped = len(entries) - len(todo)
    report.bytes_transferred = tracker.bytes_done
    report.seconds = time.perf_counter() - started
    return report


def materialize(location: str | Path | Location, dest_dir: str | Path, **kwargs) -> Path:
    """A local directory (or file) with the location's content: local data in place, remote data synced."""
    loc = parse_location(location)
    if loc.kind == "local":
        if not loc.path.exists():
            raise StorageNotFoundError(f"{loc.path} does not exist", fix="check the local path")
        return loc.path
    report = sync_down(loc, dest_dir, **kwargs)
    dest = Path(dest_dir).absolute()
    return dest / next(iter(SyncManifest.load(dest).files)) if report.single_file else dest


# --- up --------------------------------------------------------------------------------------


def _local_files(src: Path) -> dict[str, Entry]:
    if not src.is_dir():
        raise ConfigError(f"{src} is not a directory", fix="give the folder holding the results to upload")
    entries = {
        n: e for n, e in LocalStore(parse_location(src)).list().entries.items()
        if n.split("/", 1)[0] not in RESERVED_LOCAL and n.rpartition("/")[2] not in MARKERS
    }
    problems = [
        Problem("unsafe-file-name", f"{printable(n)}: {why}")
        for n in sorted(entries) if (why := name_problem(n)) is not None
    ]
    if problems:
        raise ConfigError(f"{len(problems)} file name(s) cannot be blob names", where=str(src), problems=problems[:20],
                          fix="rename those files")
    return entries


def sync_up(
    src_dir: str | Path,
    location: str | Path | Location,
    *,
    access: StorageAccess | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    on_progress: ProgressFn | None = None,
) -> SyncReport:
    """Publish `src_dir` at the location: unchanged blobs skipped, the published marker written last."""
    started = time.perf_counter()
    src = Path(src_dir).absolute()
    local = _local_files(src)
    loc = parse_location(location)
    if loc.kind == "local":
        loc.path.mkdir(parents=True, exist_ok=True)
    store = open_store(loc, access, pool_size=concurrency + 4)
    remote = store.list()
    if remote.single:
        raise ConfigError("the upload target is a single blob, not a folder", where=store.location.display,
                          fix="choose a folder (prefix) as the target")
    md5s: dict[str, str] = {}
    run_parallel(sorted(local), lambda n: md5s.__setitem__(n, file_md5(src.joinpath(*n.split("/")))), concurrency)
    wanted = {n: (local[n].size, md5s[n]) for n in local}
    hashed = {n: replace(e, md5=md5s[n]) for n, e in local.items()}
    report = SyncReport("up", str(src), store.location.display, files_total=len(local),
                        bytes_total=sum(e.size for e in local.values()), fingerprint=fingerprint(hashed))

    current = parse_published(store.read(PUBLISHED_MARKER) or b"") if PUBLISHED_MARKER in remote.entries else None
    if current != wanted:
        todo = [n for n in sorted(local) if not (
            n in remote.entries and remote.entries[n].md5 == md5s[n] and remote.entries[n].size == local[n].size
        )]
        # Readers must stop trusting the old content before any of it changes.
        store.delete(PUBLISHED_MARKER)
        store.write(PUBLISHING_MARKER, json.dumps({"files": len(local), "started": time.time()}).encode())
        tracker = ProgressTracker(len(todo), sum(local[n].size for n in todo), on_progress)
        tracker.start()

        def upload(name: str) -> None:
            store.put(src.joinpath(*name.split("/")), name, md5s[name])
            tracker.advance(name, local[name].size)

        run_parallel(todo, upload, concurrency)
        store.write(PUBLISHED_MARKER, published_document(wanted))
        store.delete(PUBLISHING_MARKER)
        report.files_transferred, report.bytes_transferred = len(todo), tracker.bytes_done
    report.files_skipped = report.files_total - report.files_transferred
    report.published = True
    report.seconds = time.perf_counter() - started
    return report


# --- questions -------------------------------------------------------------------------------


def is_published(location: str | Path | Location, access: StorageAccess | None = None) -> bool:
    """True when the location holds a complete, published upload (its marker is present and sound)."""
    store = open_store(location, access)
    data = store.read(PUBLISHED_MARKER)
    return data is not None and parse_published(data) is not None


def content_fingerprint(location: str | Path | Location, access: StorageAccess | None = None) -> str:
    """A hash of what a reader would download (names, sizes, MD5s/etags): a cache key for the flow."""
    store = open_store(location, access)
    entries, _, _ = readable_entries(store, store.list().entries)
    return fingerprint(entries)


__all__ = ["sync_down", "sync_up", "is_published", "content_fingerprint", "materialize", "SYNC_MANIFEST"]
