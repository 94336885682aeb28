"""Progress a person can watch: the command line installs a sink, the job's steps report to it.

`taoflow run` and `taoflow demo` run the flow in their own process (an ephemeral Prefect API, or
the server in PREFECT_API_URL), so one process-wide sink reaches every task thread. A run from a
deployment has no sink: its progress is the run's progress artifact and log. Plain data and
callbacks; drawing is `taoflow/cli/progress.py`'s business.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Protocol

from tasks.launch.status import EpochEvent
from tasks.storage.transfer import SyncProgress


@dataclass(frozen=True)
class TrainingProgress:
    """Where training is: TAO's newest epoch line (epochs completed of all, loss, ETA), the newest
    validation mAP, and whether the run is complete."""

    epoch: EpochEvent
    last_map: float | None = None
    done: bool = False


class ProgressSink(Protocol):
    def staging(self, name: str, progress: SyncProgress) -> None:
        """Files and bytes of one input staged so far."""

    def training(self, progress: TrainingProgress) -> None:
        """Where training is."""


_lock = threading.Lock()
_sinks: list[ProgressSink] = []


@contextmanager
def showing(sink: ProgressSink) -> Iterator[ProgressSink]:
    """Send this process's progress to `sink` while the block runs.

    >>> class Print:
    ...     def staging(self, name, progress): print(name, progress.files_done)
    ...     def training(self, progress): print(progress.epoch.epoch, "of", progress.epoch.max_epoch)
    >>> with showing(Print()):
    ...     report_training(TrainingProgress(EpochEvent(2, 12)))
    2 of 12
    """
    with _lock:
        _sinks.append(sink)
    try:
        yield sink
    finally:
        with _lock:
            _sinks.remove(sink)


def report_staging(name: str, progress: SyncProgress) -> None:
    for sink in list(_sinks):
        sink.staging(name, progress)


def report_training(progress: TrainingProgress) -> None:
    for sink in list(_sinks):
        sink.training(progress)


def staging_reporter(name: str):
    """A `sync_down` progress callback that reports one input's staging, or None without a sink."""
    return (lambda progress: report_staging(name, progress)) if _sinks else None
