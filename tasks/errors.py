"""The one error hierarchy of taoflow.

Every error a user can cause is a `TaoflowError`: it says *what* went wrong, *where*
(a file:line:col, a location, a field) and *how to fix* it. The CLI prints these as one
readable block and exits non-zero; a bare traceback means a bug in taoflow, not in the input.

`transient` tells the flow's retry policy whether trying again can help (a storage hiccup,
an engine restart, a crashed trainer that can resume) or cannot (a bad spec, a bad dataset,
wrong credentials): user errors fail at once, with the message, and are never retried.

Every text of an error passes through `tasks.redact.scrub` as it is set: an Azure SDK message
quoting a URL with its SAS, or a connection string, never reaches a log, a state message or
a pickled task result through us.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
    #: Process exit code the CLI uses for this error.
    exit_code: int = 1

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

    exit_code = 2


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


class LaunchError(TaoflowError):
    """The TAO container could not run the job, or the job did not succeed."""


class EngineUnavailable(LaunchError):
    """No container engine answers (or it went away mid-run): retrying after it is back can help."""

    transient = True


class GpuRuntimeMissing(LaunchError):
    """GPUs were requested but the engine has no NVIDIA runtime."""


class ImageUnavailable(LaunchError):
    """The TAO image is not present and cannot be pulled."""


class TrainingFailed(LaunchError):
    """The trainer ran and did not finish: how it ended, TAO's own error line, the log tail.

    `transient` is True only when a retry can help: it resumes from the newest checkpoint, and
    the ending is neither final (a refused spec, GPU memory, undecodable data) nor a repeat of
    the previous attempt's failure at the same point.
    """

    def __init__(
        self,
        what: str,
        *,
        exit_code: int | None = None,
        reason: str = "failed",
        log_tail: Iterable[str] = (),
        resumable: bool = False,
        tao_error: str | None = None,
        completed_epochs: int | None = None,
        num_epochs: int | None = None,
        where: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.container_exit_code = exit_code
        self.reason = reason
        self.log_tail = list(log_tail)
        self.resumable = resumable
        self.transient = resumable
        self.tao_error = tao_error
        self.completed_epochs = completed_epochs
        self.num_epochs = num_epochs
        detail = f"{what} (exit code {exit_code}, reason: {reason})"
        if tao_error and tao_error not in what:
            detail += f"\n  TAO said: {tao_error}"
        tail = "\n".join(f"    | {line}" for line in self.log_tail)
        if tail:
            detail += f"\n  last {len(self.log_tail)} log lines:\n{tail}"
        super().__init__(detail, where=where, fix=fix)
        self.what = detail


class TrainingCancelled(LaunchError):
    """The job was stopped on request (flow cancellation, time-out, Ctrl-C)."""


class PublishError(StorageError):
    """The results could not be published."""


class EventError(TaoflowError):
    """An incoming event (Event Grid, CloudEvents) is malformed or not authorised."""


def is_transient(exc: BaseException) -> bool:
    """The retry policy's single question: may trying again help?"""
    return isinstance(exc, TaoflowError) and bool(getattr(exc, "transient", False))


@dataclass
class ProblemList:
    """Collects problems so a check can report every one of them at once."""

    items: list[Problem] = field(default_factory=list)

    def add(self, code: str, message: str, **kw) -> None:
        self.items.append(Problem(code, message, **kw))

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.items if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.items if p.severity == "warning"]

    def __bool__(self) -> bool:
        return bool(self.items)

    def __iter__(self):
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)
