"""What every launcher shares: the `Launcher` interface, the observer callbacks, the cancel
token, and the supervision loop (stream, follow status.json, stop gracefully, clean up).

A backend only has to say how to start a job and how to wait for, interrupt and terminate
it (`RunningJob`); everything a user can see or rely on is decided here, once.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Protocol

from tasks.errors import TrainingCancelled
from tasks.launch.plan import LaunchPlan
from tasks.launch.results import append_untrusted, newest_checkpoint_epoch
from tasks.launch.status import EpochEvent, StatusLog, ValidationEvent
from tasks.redact import Redactor

LOG_TAIL_LINES = 50


class CancelToken:
    """Set from any thread (a flow's cancellation, a signal handler) to stop the job gracefully."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason: str | None = None

    def cancel(self, reason: str = "cancelled") -> None:
        self.reason = reason
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


@dataclass
class JobObserver:
    """Callbacks, all called in the launching thread; every text they get is already redacted."""

    on_line: Callable[[str], None] | None = None
    on_epoch: Callable[[EpochEvent], None] | None = None
    on_validation: Callable[[ValidationEvent], None] | None = None
    on_pull: Callable[[str], None] | None = None
    #: Something the user should know that did not stop the job (a limit the engine lowered).
    on_warning: Callable[[str], None] | None = None


@dataclass
class JobOutcome:
    """What happened, before judgement."""

    exit_code: int | None
    status: StatusLog
    log_tail: list[str]
    cancelled: bool = False
    stop_reason: str | None = None
    duration_s: float = 0.0
    #: Other jobs seen on this job's GPUs while it ran (containers of other runs, foreign processes).
    gpu_neighbours: tuple[str, ...] = ()


@dataclass(frozen=True)
class StopPolicy:
    """How a job is stopped: SIGUSR1 first (TAO checkpoints and saves), then SIGTERM, then kill."""

    #: Seconds TAO gets after SIGUSR1 to finish its step, checkpoint and save.
    graceful_seconds: float = 60.0
    #: Seconds between SIGTERM and SIGKILL.
    terminate_seconds: float = 10.0
    #: Part of the trainer's command line that identifies it (TAO: .../detectnet_v2/scripts/train.py).
    trainer_pattern: str = "detectnet_v2/scripts/train"
    #: How often the loop looks at the job, the log and status.json.
    tick_seconds: float = 0.25


class RunningJob(Protocol):
    """A started job, as a backend exposes it to the supervision loop."""

    lines: "queue.Queue[str | None]"

    def wait(self, timeout: float) -> int | None:
        """The exit code, or None if still running after `timeout` seconds."""

    def interrupt(self, pattern: str) -> None:
        """SIGUSR1 to the trainer process."""

    def terminate(self, grace: float) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds."""

    def cleanup(self) -> None:
        """Remove what the job left (container, process group); must be safe to call twice."""


class Launcher(Protocol):
    """What the flow needs of a way to run TAO: run a plan, hand it its GPUs, clear a GPU of a job
    that outlived its lease, and say which image ran."""

    policy: StopPolicy

    def run(self, plan: LaunchPlan, observer: JobObserver | None = None, cancel: CancelToken | None = None) -> JobOutcome:
        """Run the plan's command to its end (or until cancelled) and report what happened."""

    def assign_gpus(self, plan: LaunchPlan, ids: tuple[int, ...] | None) -> LaunchPlan:
        """The plan on exactly the booked GPUs `ids` (None: nothing was booked; what the request names)."""

    def evict(self, host: str, ids: tuple[int, ...]) -> list[str]:
        """Remove jobs still running on GPUs `ids` of `host` without a lease; what was removed."""

    def image_digest(self, image: str) -> str | None:
        """The image's digest where the launcher's engine knows it; None otherwise."""

    def with_policy(self, policy: StopPolicy) -> "Launcher":
        """The same launcher, stopping jobs by `policy`."""


def pump_lines(source: Iterable[bytes], sink: "queue.Queue[str | None]") -> threading.Thread:
    """A daemon thread splitting a byte stream into lines; None marks the end of the stream."""

    def read() -> None:
        pending = b""
        try:
            for chunk in source:
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    sink.put(line.decode("utf-8", "replace").rstrip("\r"))
        except Exception:  # noqa: BLE001 - the stream breaks when the job is removed; the loop judges
            pass
        finally:
            if pending:
                sink.put(pending.decode("utf-8", "replace"))
            sink.put(None)

    thread = threading.Thread(target=read, name="taoflow-log-reader", daemon=True)
    thread.start()
    return thread


@dataclass
class JobMonitor:
    """Turns raw output and status.json into redacted callbacks, a log tail and the log file."""

    plan: LaunchPlan
    observer: JobObserver
    redactor: Redactor
    log_file: Path | None = None
    tail: deque = field(default_factory=lambda: deque(maxlen=LOG_TAIL_LINES))
    stream_ended: bool = False

    def __post_init__(self) -> None:
        results = self.plan.results_host_dir
        # Epochs already done: the checkpoint TAO resumes from (it starts from 0 without one).
        start = (newest_checkpoint_epoch(results) or 0) if results else None
        self.status = StatusLog(results / "status.json" if results else None, start_epoch=start)
        # The log file sits in the container-written folder: never follow what was planted there.
        self._log = append_untrusted(self.log_file) if self.log_file is not None else None

    def pump(self, lines: "queue.Queue[str | None]") -> None:
        while True:
            try:
                raw = lines.get_nowait()
            except queue.Empty:
                break
            if raw is None:
                self.stream_ended = True
                continue
            line = self.redactor(raw)
            self.tail.append(line)
            if self._log is not None:
                self._log.write(line + "\n")
                self._log.flush()
            if self.observer.on_line:
                self.observer.on_line(line)
        self._report(self.status.poll())

    def _report(self, events: list[EpochEvent | ValidationEvent]) -> None:
        for event in events:
            if isinstance(event, EpochEvent) and self.observer.on_epoch:
                self.observer.on_epoch(event)
            elif isinstance(event, ValidationEvent) and self.observer.on_validation:
                self.observer.on_validation(event)

    def drain(self, lines: "queue.Queue[str | None]", timeout: float = 5.0) -> None:
        """After the job ended: wait (briefly) for the reader to deliver the last lines."""
        deadline = time.monotonic() + timeout
        while not self.stream_ended and time.monotonic() < deadline:
            self.pump(lines)
            time.sleep(0.02)
        self.pump(lines)
        self._report(self.status.finish())

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


class _CancelRequested(Exception):
    pass


def supervise(job: RunningJob, monitor: JobMonitor, cancel: CancelToken | None, policy: StopPolicy) -> JobOutcome:
    """Wait for the job while streaming; on cancel, time-out or Ctrl-C stop it gracefully."""
    started = time.monotonic()
    exit_code: int | None = None
    try:
        try:
            while exit_code is None:
                exit_code = job.wait(policy.tick_seconds)
                monitor.pump(job.lines)
                if exit_code is None and cancel is not None and cancel.cancelled:
                    raise _CancelRequested()
            monitor.drain(job.lines)
        except BaseException as exc:  # cancel, Prefect's injected time-out, KeyboardInterrupt
            exit_code = _stop(job, monitor, policy)
            if isinstance(exc, _CancelRequested):
                raise TrainingCancelled(
                    f"training stopped on request ({cancel.reason if cancel else 'cancelled'})",
                    where=str(monitor.plan.results_host_dir or ""),
                    fix="run again with the same run id to resume from the last checkpoint",
                ) from None
            raise
    finally:
        job.cleanup()
        monitor.close()
    return JobOutcome(
        exit_code=exit_code,
        status=monitor.status,
        log_tail=list(monitor.tail),
        duration_s=time.monotonic() - started,
    )


def _stop(job: RunningJob, monitor: JobMonitor, policy: StopPolicy) -> int | None:
    """SIGUSR1 so TAO checkpoints and saves, then SIGTERM/SIGKILL if it does not finish in time."""
    try:
        job.interrupt(policy.trainer_pattern)
        deadline = time.monotonic() + policy.graceful_seconds
        while time.monotonic() < deadline:
            code = job.wait(policy.tick_seconds)
            monitor.pump(job.lines)
            if code is not None:
                return code
        job.terminate(policy.terminate_seconds)
        code = job.wait(policy.terminate_seconds + 5)
        monitor.pump(job.lines)
        return code
    except Exception:  # noqa: BLE001 - the engine may be gone; cleanup() still runs
        return None
