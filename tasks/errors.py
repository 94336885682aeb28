"""The one error hierarchy of taoflow.

Every error a user can cause is a `TaoflowError`: it says *what* went wrong, *where*
(a file:line:col, a location, a field) and *how to fix* it. The CLI prints these as one
readable block and exits non-zero; a bare traceback means a bug in taoflow, not in the input.

    TaoflowError
    ├── ConfigError ·················· a request, job file, command line or Prefect block is wrong
    │   └── FolderClaimed ············ the model version folder belongs to another run
    ├── SpecError ···················· a spec cannot be parsed, fails its checks or cannot be rewritten
    ├── DatasetError ················· the dataset fails pre-flight validation
    ├── StorageError ················· reading or writing a location failed
    │   ├── TransientStorageError ···· (transient) a connection drop, a time-out, 408/429/5xx
    │   │   └── PublicationLeaseLost · (transient) the publishing lease expired mid-upload
    │   ├── StorageAuthError ········· the credential was refused or is missing
    │   ├── StorageNotFoundError ····· no such account, container, prefix or file
    │   ├── StorageUnreachableError ·· refused or unresolvable endpoint, after bounded reconnects
    │   ├── StorageBusyError ········· another sync holds the target
    │   ├── UntrustedEndpointError ··· a host no credential may be sent to
    │   └── NotRegularFile ··········· a link or special file where a file was being read
    ├── LaunchError ·················· the TAO container could not run the job
    │   ├── EngineUnavailable ········ (transient) no Docker engine answers, or it went away
    │   ├── GpuRuntimeMissing ········ GPUs asked for, no NVIDIA runtime
    │   ├── ImageUnavailable ········· the TAO image is absent and cannot be pulled
    │   ├── GpuLeaseLost ············· (transient) the job's GPU lease ran out while it ran
    │   ├── SlotServerUnavailable ···· (transient) the server that books GPU slots did not answer
    │   ├── TaoJobFailed ············· TAO ran and did not succeed (transient when a retry helps)
    │   │   ├── TrainingFailed ······· `detectnet_v2 train`
    │   │   ├── EvaluationFailed ····· `detectnet_v2 evaluate`
    │   │   ├── PruneFailed ·········· `detectnet_v2 prune`
    │   │   ├── ExportFailed ········· `detectnet_v2 export`
    │   │   └── EngineBuildFailed ···· TAO Deploy's `detectnet_v2 gen_trt_engine`
    │   ├── ChainStopped ············· a gate of the chain stopped it (a pruning ratio out of bounds)
    │   └── TrainingCancelled ········ stopped on request
    ├── EventError ··················· an incoming event is malformed or not authorised
    │   ├── UnreadableContent ········ a media type the bridge does not read (HTTP 415)
    │   ├── EmitError ················ the Prefect API did not take an event
    │   └── StoreUnavailable ········· (transient) the bridge's state store cannot record now
    └── ReportError ·················· nothing to draw a report from, or a damaged report.json

`tasks.storage.azure_errors` maps the Azure SDK's exceptions onto the storage branch.

`transient` tells the flow's retry policy whether trying again can help (a storage hiccup,
an engine restart, a crashed trainer that can resume) or cannot (a bad spec, a bad dataset,
wrong credentials): user errors fail at once, with the message, and are never retried.

Every text of an error passes through `tasks.redact.scrub` as it is set: an Azure SDK message
quoting a URL with its SAS, or a connection string, never reaches a log, a state message or
a pickled task result through us.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Literal

from tasks.redact import scrub

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding (a spec check, a dataset check, a request field) with its place in a file."""

    code: str
    message: str
    severity: Severity = "error"
    file: str | None = None
    line: int | None = None
    column: int | None = None
    hint: str | None = None

    @property
    def where(self) -> str | None:
        return format_where(self.file, self.line, self.column)

    def render(self) -> str:
        head = f"{self.where}: " if self.where else ""
        text = f"{head}{self.severity} {self.code}: {self.message}"
        if self.hint:
            text += f"\n    hint: {self.hint}"
        return text

    def to_dict(self) -> dict:
        return {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "hint": self.hint,
        }


def format_where(file: str | None, line: int | None = None, column: int | None = None) -> str | None:
    """`file:line:col`, the form editors and terminals turn into links."""
    if file is None and line is None:
        return None
    parts = [file or "<input>"]
    if line is not None:
        parts.append(str(line))
        if column is not None:
            parts.append(str(column))
    return ":".join(parts)


class _Scrubbed:
    """An error text attribute that is scrubbed of secrets whenever it is set."""

    def __set_name__(self, owner, name: str) -> None:
        self.slot = f"_{name}"

    def __get__(self, obj, owner=None):
        return self if obj is None else obj.__dict__.get(self.slot)

    def __set__(self, obj, value: str | None) -> None:
        obj.__dict__[self.slot] = None if value is None else scrub(str(value))


class TaoflowError(Exception):
    """Base of every error taoflow raises on purpose."""

    what = _Scrubbed()
    where = _Scrubbed()
    fix = _Scrubbed()

    #: Whether a retry of the same step can succeed without the user changing anything.
    transient: bool = False
    #: The exit status of the `taoflow` command that ends with this error.
    cli_exit_status: int = 1

    def __init__(
        self,
        what: str,
        *,
        where: str | None = None,
        fix: str | None = None,
        problems: Iterable[Problem] = (),
    ) -> None:
        self.what = what
        self.where = where
        self.fix = fix
        self.problems: list[Problem] = list(problems)
        super().__init__(self.render())

    def render(self) -> str:
        lines = [f"{self.where}: {self.what}" if self.where else self.what]
        lines.extend(f"  {p.render()}" for p in self.problems)
        if self.fix:
            lines.append(f"  how to fix: {self.fix}")
        # Problems come from anywhere (an SDK message in a finding) and may be added later.
        return scrub("\n".join(lines))

    def __str__(self) -> str:
        return self.render()

    def __reduce__(self):
        # Prefect pickles exceptions into task states; keep every field across that trip.
        state = {k: v for k, v in self.__dict__.items() if k not in {"_what", "_where", "_fix"}}
        return (_rebuild, (type(self), self.what, self.where, self.fix, self.problems, state))


def _rebuild(cls, what, where, fix, problems, state):
    err = cls.__new__(cls)
    TaoflowError.__init__(err, what, where=where, fix=fix, problems=problems)
    err.__dict__.update(state)
    return err


class ConfigError(TaoflowError):
    """A request, config file or command line is wrong."""

    cli_exit_status = 2


class FolderClaimed(ConfigError):
    """The version folder (OUTPUT/MODEL_APP_NAME/MODEL_SUBFOLDER) was claimed by another run, or
    already holds another run's published model: this run must not train, publish or promote there."""


class SpecError(TaoflowError):
    """A DetectNet_v2 spec cannot be parsed, fails its checks, or cannot be rewritten."""


class DatasetError(TaoflowError):
    """The dataset fails pre-flight validation."""


class StorageError(TaoflowError):
    """Reading or writing a location failed."""


class TransientStorageError(StorageError):
    """A connection error, time-out or 408/429/5xx: trying again can help."""

    transient = True


class StorageAuthError(StorageError):
    """The credential was refused (401/403) or is missing."""


class StorageNotFoundError(StorageError):
    """The account, container, prefix or file does not exist."""


class StorageUnreachableError(StorageError):
    """No connection to the storage endpoint (refused, unresolvable, connect time-out) after the
    SDK's time-bounded reconnects: not retried again by the step, that would only repeat the wait."""


class StorageBusyError(StorageError):
    """Another sync holds the target (a local lock file, or the lease on a prefix's publishing marker)."""


class PublicationLeaseLost(TransientStorageError):
    """The lease on a prefix's publishing marker expired or vanished mid-upload (a stalled process,
    a storage restart): nothing was marked complete; a retry takes a new lease and resumes."""


class UntrustedEndpointError(StorageError):
    """A blob location points at a host that is neither an Azure Storage endpoint nor the configured one."""


class NotRegularFile(StorageError):
    """A name that was a regular file when listed is now something else (a symlink, a FIFO, ...)."""


class LaunchError(TaoflowError):
    """The TAO container could not run the job, or the job did not succeed."""


class EngineUnavailable(LaunchError):
    """No container engine answers (or it went away mid-run): retrying after it is back can help."""

    transient = True


class GpuRuntimeMissing(LaunchError):
    """GPUs were requested but the engine has no NVIDIA runtime."""


class ImageUnavailable(LaunchError):
    """The TAO image is not present and cannot be pulled."""


class GpuLeaseLost(LaunchError):
    """The lease on the job's GPUs ran out while it ran (the Prefect server was away, or restarted):
    the job was stopped so that no other run shares its GPUs; a retry books again and resumes."""

    transient = True


class SlotServerUnavailable(LaunchError):
    """The Prefect server that books GPU slots did not answer (busy: 408, 429 or 5xx after the client's
    own retries; or unreachable) for longer than a job waits for it: nothing was started, and a
    retry books again."""

    transient = True


class TaoJobFailed(LaunchError):
    """A `detectnet_v2` sub-task ran and did not succeed: how it ended (`reason`), TAO's own error
    line, the container's exit code and the log tail. `transient` when a retry can help."""

    def __init__(
        self,
        what: str,
        *,
        reason: str = "failed",
        exit_code: int | None = None,
        tao_error: str | None = None,
        log_tail: Iterable[str] = (),
        transient: bool = False,
        where: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.reason = reason
        self.container_exit_code = exit_code
        self.tao_error = tao_error
        self.log_tail = list(log_tail)
        self.transient = transient
        detail = f"{what} (exit code {exit_code}, reason: {reason})"
        if tao_error and tao_error not in what:
            detail += f"\n  TAO said: {tao_error}"
        if self.log_tail:
            detail += f"\n  last {len(self.log_tail)} log lines:\n" + "\n".join(f"    | {line}" for line in self.log_tail)
        super().__init__(detail, where=where, fix=fix)


class TrainingFailed(TaoJobFailed):
    """`detectnet_v2 train` did not finish. Transient only when a retry resumes from the newest
    checkpoint and the ending is neither final (a refused spec, GPU memory, undecodable data) nor a
    repeat of the previous attempt's failure at the same point."""

    def __init__(self, what: str, *, resumable: bool = False, completed_epochs: int | None = None,
                 num_epochs: int | None = None, **failure) -> None:
        self.resumable = resumable
        self.completed_epochs = completed_epochs
        self.num_epochs = num_epochs
        super().__init__(what, transient=resumable, **failure)


class EvaluationFailed(TaoJobFailed):
    """`detectnet_v2 evaluate` ran and did not measure the model."""


class PruneFailed(TaoJobFailed):
    """`detectnet_v2 prune` ran and left no pruned model with its pruning ratio."""


class ExportFailed(TaoJobFailed):
    """`detectnet_v2 export` ran and did not leave every file it was asked for."""


class EngineBuildFailed(TaoJobFailed):
    """TAO Deploy's `detectnet_v2 gen_trt_engine` ran and left no TensorRT engine."""


class ChainStopped(LaunchError):
    """A gate of the chain after training stopped it (the pruning ratio outside the request's bounds):
    the steps before it are kept (cached), a run with other bounds or knobs goes on from there."""


class TrainingCancelled(LaunchError):
    """The job was stopped on request (flow cancellation, time-out, Ctrl-C)."""


class EventError(TaoflowError):
    """An incoming event (Event Grid, CloudEvents) is malformed or not authorised."""


class UnreadableContent(EventError):
    """The body's media type or charset is not one the bridge reads (the receiver answers 415)."""


class EmitError(EventError):
    """The Prefect API did not take the event; the window stays pending and is sent again."""


class StoreUnavailable(EventError):
    """The state store cannot record a delivery now (disk, lock, closed): the receiver answers 503."""

    transient = True


class ReportError(TaoflowError):
    """A results folder has nothing to draw a report from, or a damaged report.json."""


def is_transient(exc: BaseException) -> bool:
    """The retry policy's single question: may trying again help?

    >>> is_transient(EngineUnavailable("no engine")), is_transient(ConfigError("bad"))
    (True, False)
    """
    return isinstance(exc, TaoflowError) and bool(getattr(exc, "transient", False))


def busy_answer(status_code: int) -> bool:
    """Whether an HTTP answer of the Prefect API means "busy, try again later" (408, 429, 5xx).

    >>> busy_answer(503), busy_answer(429), busy_answer(404)
    (True, True, False)
    """
    return status_code in (408, 429) or status_code >= 500


def failure_of(state) -> Exception | None:
    """The exception a failed Prefect state holds (None for any other state)."""
    try:
        state.result()
    except Exception as exc:  # noqa: BLE001 - whatever it is, the caller only classifies it
        return exc
    return None


def retry_if_transient(task, task_run, state) -> bool:
    """Every Prefect task's `retry_condition_fn`: retry what a retry can fix (a storage blip, the
    engine back, a crash with checkpoints to resume from), never a user's mistake. Plain: it only
    asks the failed state for its exception."""
    exc = failure_of(state)
    return exc is not None and is_transient(exc)
