"""The progress `taoflow run` and `taoflow demo` show: a live display on a terminal (staging:
files and bytes per input; training: epochs of all, loss, ETA, last mAP), plain lines otherwise."""

from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from typing import Iterator

from rich.progress import BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from taoflow.cli.output import err_console
from tasks.progress import TrainingProgress, showing
from tasks.storage.transfer import SyncProgress

#: A plain line per input at most this often while staging (and always when it finishes).
PLAIN_EVERY_SECONDS = 5.0


def _training_text(p: TrainingProgress) -> str:
    e = p.epoch
    parts = [f"{e.epoch} of {e.max_epoch} epochs"]
    if e.loss is not None:
        parts.append(f"loss {e.loss:.5g}")
    if e.eta and not p.done:
        parts.append(f"ETA {e.eta}")
    if p.last_map is not None:
        parts.append(f"last mAP {p.last_map:.2f} %")
    return ", ".join(parts)


class PlainLines:
    """One line per training step and a few per staged input: for logs, pipes and CI."""

    def __init__(self) -> None:
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()
        self._training: tuple | None = None

    def staging(self, name: str, p: SyncProgress) -> None:
        now = time.monotonic()
        with self._lock:
            finished = p.files_done >= p.files_total
            if not finished and now - self._last.get(name, 0.0) < PLAIN_EVERY_SECONDS:
                return
            self._last[name] = now
        err_console.print(f"staging {name}: {p.files_done}/{p.files_total} files, "
                          f"{p.bytes_done / 1e6:.1f}/{p.bytes_total / 1e6:.1f} MB", markup=False)

    def training(self, p: TrainingProgress) -> None:
        key = (p.epoch.epoch, p.last_map, p.done)
        with self._lock:
            if key == self._training:
                return
            self._training = key
        err_console.print(f"training: {_training_text(p)}{' (complete)' if p.done else ''}", markup=False)


class LiveDisplay:
    """A rich progress display on the terminal."""

    def __init__(self) -> None:
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 DownloadColumn(), TimeRemainingColumn(), console=err_console)
        self._tasks: dict[str, int] = {}
        self._lock = threading.Lock()

    def _task(self, key: str, description: str, total: float):
        with self._lock:
            if key not in self._tasks:
                self._tasks[key] = self.progress.add_task(description, total=total)
            return self._tasks[key]

    def staging(self, name: str, p: SyncProgress) -> None:
        task = self._task(f"stage:{name}", f"stage {name}", p.bytes_total or 1)
        self.progress.update(task, total=p.bytes_total or 1, completed=p.bytes_done,
                             description=f"stage {name} ({p.files_done}/{p.files_total} files)")

    def training(self, p: TrainingProgress) -> None:
        task = self._task("train", "train", p.epoch.max_epoch)
        self.progress.update(task, total=p.epoch.max_epoch, completed=p.epoch.epoch,
                             description=f"train: {_training_text(p)}")


@contextmanager
def progress_display() -> Iterator[None]:
    """Live on a terminal (Prefect's console lines then only for warnings and errors), plain lines else."""
    if not err_console.is_terminal:
        with showing(PlainLines()):
            yield
        return
    display = LiveDisplay()
    quiet = [(h, h.level) for h in _console_handlers() if h.level < logging.WARNING]
    for handler, _ in quiet:
        handler.setLevel(logging.WARNING)
    try:
        with display.progress, showing(display):
            yield
    finally:
        for handler, level in quiet:
            handler.setLevel(level)


def _console_handlers() -> list[logging.Handler]:
    """Prefect's console handlers (the API handlers keep every line for the UI)."""
    import prefect.main  # noqa: F401 - its logging set-up creates them

    found = []
    for logger in [logging.getLogger()] + [logging.getLogger(n) for n in ("prefect", "prefect.flow_runs", "prefect.task_runs")]:
        found += [h for h in logger.handlers if type(h).__name__ == "PrefectConsoleHandler"]
    return found
