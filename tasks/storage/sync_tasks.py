"""Prefect task wrappers for sync down/up: retries for transient storage faults only, progress in the run log.

Never retried: auth and not-found errors, a busy target (the sync already waited). An
unreachable endpoint (refused, unresolvable: the SDK already spent its time-bounded reconnects
on it, see tasks.storage.retry) is final when *reading* (staging, sync down: usually a wrong
endpoint, so say so within seconds) but retried when *publishing*, where the endpoint is
usually known-good, an outage is the likelier cause and a trained model is at stake; that is
bounded too: 5 attempts of ~8 s plus the delays below, under two minutes.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Callable

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tasks.errors import StorageUnreachableError, TaoflowError, failure_of, is_transient, retry_if_transient
from tasks.storage.access import StorageAccess
from tasks.storage.sync import content_fingerprint, sync_down, sync_up
from tasks.storage.transfer import DEFAULT_CONCURRENCY, SyncProgress, SyncReport

#: Waits between attempts; a storage blip or an emulator restart is usually over within these.
RETRY_DELAYS = [2.0, 5.0, 15.0, 30.0]


def retry_publishing(task, task_run, state) -> bool:
    """`retry_condition_fn` for publishing: what `retry_if_transient` retries, and an endpoint that
    stopped answering (see the module doc for why only here)."""
    exc = failure_of(state)
    return exc is not None and (is_transient(exc) or isinstance(exc, StorageUnreachableError))


#: Transient faults retried with back-off; results are files, so no result cache.
RETRY_TRANSIENT = dict(
    retries=len(RETRY_DELAYS),
    retry_delay_seconds=RETRY_DELAYS,
    retry_condition_fn=retry_if_transient,
    cache_policy=NO_CACHE,
)
RETRY_PUBLISH = RETRY_TRANSIENT | {"retry_condition_fn": retry_publishing}


class LogProgress:
    """Progress to the run logger: at most every `interval` seconds, plus the final count."""

    def __init__(self, label: str, interval: float = 5.0) -> None:
        self.label, self.interval = label, interval
        self._next = 0.0
        self._logger = get_run_logger()

    def __call__(self, p: SyncProgress) -> None:
        now = time.monotonic()
        if p.files_done != p.files_total and now < self._next:
            return
        self._next = now + self.interval
        self._logger.info(
            "%s: %d/%d files, %.1f/%.1f MB", self.label, p.files_done, p.files_total,
            p.bytes_done / 1e6, p.bytes_total / 1e6,
        )


@task(name="sync-down", **RETRY_TRANSIENT)
def sync_down_task(
    location: str,
    dest_dir: str | Path,
    access: StorageAccess | None = None,
    require_published: bool = False,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> SyncReport:
    """Fetch a location into a local directory; a retry resumes where the failed attempt stopped."""
    report = sync_down(
        location, dest_dir, access=access, concurrency=concurrency, require_published=require_published,
        on_progress=LogProgress(f"sync down {location}"), notice=get_run_logger().warning,
    )
    get_run_logger().info(report.summary())
    return report


@task(name="sync-up", **RETRY_PUBLISH)
def sync_up_task(
    src_dir: str | Path,
    location: str,
    access: StorageAccess | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> SyncReport:
    """Publish a results directory; a retry skips blobs already uploaded and writes the marker last.

    Retried also when the endpoint is unreachable (see the module doc): an outage of up to about a
    minute during publishing does not cost the trained model.
    """
    report = sync_up(src_dir, location, access=access, concurrency=concurrency,
                     on_progress=LogProgress(f"sync up {location}"), notice=get_run_logger().warning)
    get_run_logger().info(report.summary())
    return report


@task(name="content-fingerprint", **RETRY_TRANSIENT)
def fingerprint_task(location: str, access: StorageAccess | None = None) -> str:
    """The content hash of a location as staging computes it (a listing: names, sizes, MD5s/etags)."""
    return content_fingerprint(location, access)


def content_cache_key(*location_parameters: str, access: StorageAccess | None = None) -> Callable:
    """A `cache_key_fn` keyed on the *content* of the named location parameters (and the task's inputs).

    The key changes when any file behind those locations changes (name, size, MD5/etag), so a
    task that only reads them is reused across runs until the data changes. Computing it lists
    the locations; when that fails (storage unreachable, auth) the key is None, so the task runs
    uncached and meets the same error itself, once, instead of Prefect logging a traceback for
    the key.

    `@task(cache_key_fn=content_cache_key("location"), persist_result=True)` on a task with a
    `location` parameter; Prefect calls the key with the run's context and the task's parameters:

    >>> import tempfile, types; data = Path(tempfile.mkdtemp())
    >>> key, context = content_cache_key("location"), types.SimpleNamespace(task=types.SimpleNamespace(name="count"))
    >>> before = key(context, {"location": str(data)})
    >>> key(context, {"location": str(data)}) == before
    True
    >>> _ = (data / "000001.txt").write_text("Car 0 0 0 1 2 30 40 0 0 0 0 0 0 0")
    >>> key(context, {"location": str(data)}) == before  # the data changed: the task runs again
    False
    """

    def key(context, parameters: dict) -> str | None:
        digest = hashlib.sha256(context.task.name.encode())
        for name in sorted(parameters):
            value = parameters[name]
            digest.update(f"{name}={value!r}".encode())
            if name in location_parameters and value:
                try:
                    digest.update(content_fingerprint(value, access).encode())
                except TaoflowError:
                    return None
        return digest.hexdigest()

    return key
