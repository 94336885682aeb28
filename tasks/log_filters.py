"""Logging filters on Prefect's handlers: every record scrubbed of secrets, and a user's mistake
(a `TaoflowError`) logged once, as its message, without a traceback.

Prefect logs an exception that ends a task or a flow with its Python traceback, and the same
error again in each "Finished in state Failed(...)" line up the call chain. For a TaoflowError
that is noise around a message that already says what, where and how to fix: the first record
of it becomes that message, the later ones are dropped. Tracebacks stay for everything else
(bugs).

The filters sit on the *handlers* (Prefect's console handler on the root logger, its API handlers on
`prefect.flow_runs` / `prefect.task_runs`, ...), not on loggers: a logger's filter sees only
records logged on that logger, while a handler sees every record that reaches it, so a line
that `azure.core`, `urllib3` or Prefect itself logs (Prefect prints a run's raw parameters when
they fail validation) is scrubbed too. Plain `logging`, no Prefect import: the handlers are
found by the logger names Prefect's logging.yml gives them.
"""

from __future__ import annotations

import ast
import logging
import re
import threading
from collections import deque

from tasks.errors import TaoflowError
from tasks.redact import scrub

#: Loggers whose handlers get the filter: the root (console) and Prefect's own tree.
_PREFIXES = ("prefect", "uvicorn", "fastapi")


class RedactingFilter(logging.Filter):
    """Rewrites a record's message and traceback text with `scrub`; never drops a record.

    >>> import logging; record = logging.LogRecord("x", 20, "f", 1, "GET %s", ("https://a/c?sig=abc",), None)
    >>> RedactingFilter().filter(record), record.getMessage()
    (True, 'GET https://a/c?sig=***')
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record is for logging to report, not us
            return True
        clean = scrub(message)
        if clean != message:
            # Formatted once here: the args may hold the secret and must not be applied again.
            record.msg, record.args = clean, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        return True


class UserErrorFilter(logging.Filter):
    r"""A TaoflowError is logged once, as its message (what, where, how to fix), with no traceback.

    >>> import logging, sys
    >>> from tasks.errors import ConfigError
    >>> try:
    ...     raise ConfigError("num_epochs must be >= 1", where="job.yaml:2", fix="set num_epochs: 3")
    ... except ConfigError:
    ...     first = logging.LogRecord("prefect.flow_runs", 40, "f", 1, "Encountered exception: %r", ("x",), sys.exc_info())
    >>> f = UserErrorFilter(); f.filter(first), first.getMessage(), first.exc_info
    (True, 'Flow run failed: job.yaml:2: num_epochs must be >= 1\n  how to fix: set num_epochs: 3', None)
    >>> again = logging.LogRecord("prefect.flow_runs", 40, "f", 1, "Finished in state Failed('job.yaml:2: num_epochs must be >= 1')", (), None)
    >>> f.filter(again)
    False
    """

    def __init__(self) -> None:
        super().__init__()
        self._seen: deque[str] = deque(maxlen=64)  # the first lines of errors already logged
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        # One record passes through every handler (console, API): decide once, for all of them.
        verdict = getattr(record, "_taoflow_keep", None)
        if verdict is None:
            verdict = record._taoflow_keep = self._decide(record)
        return verdict

    def _decide(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, TaoflowError):
            return self._clean(record, error.render(), final=True)
        if not isinstance(record.msg, str):
            return True
        if record.msg.startswith("Task run failed with exception: "):
            # Prefect's task engine logs the repr of the error, outside the `except` (no exc_info).
            found = _TASK_FAILED.match(record.getMessage())
            text = _user_error_text(found["error"], found["arg"]) if found else None
            if text is not None:
                return self._clean(record, text, final=record.levelno >= logging.ERROR, retrying=found["rest"])
        if not record.exc_info and record.msg.startswith("Finished in state"):
            message = record.getMessage()
            with self._lock:
                if any(headline in message for headline in self._seen):
                    return False
            # A task that fails without a retry logs only this line: it becomes the one clean line.
            text = _failed_state_text(message)
            if text is not None:
                return self._clean(record, text, final=True)
        return True

    def _clean(self, record: logging.LogRecord, text: str, *, final: bool, retrying: str | None = None) -> bool:
        headline = text.splitlines()[0]
        with self._lock:
            if headline in self._seen:
                return False
            if final:
                self._seen.append(headline)
        kind = "Task run" if record.name.startswith("prefect.task_runs") else "Flow run"
        note = f" ({retrying.strip(' -')})" if retrying and not final else ""
        record.msg, record.args = f"{kind} failed{note}: {text}", ()
        record.exc_info, record.exc_text = None, None
        return True


_TASK_FAILED = re.compile(r"^Task run failed with exception: (?P<error>\w+)\((?P<arg>.*)\)(?P<rest> - [^()]*)?$", re.S)


_FINISHED = re.compile(r"^Finished in state Failed\((?P<arg>.*)\)$", re.S)
_STATE_MESSAGE = re.compile(r"^(?:Task|Flow) run encountered an exception:? (?P<error>\w+): (?P<text>.*)$", re.S)


def _failed_state_text(message: str) -> str | None:
    """The TaoflowError message inside `Finished in state Failed('... encountered an exception X: ...')`."""
    found = _FINISHED.match(message)
    try:
        state_message = ast.literal_eval(found["arg"]) if found else None
    except (ValueError, SyntaxError):
        return None
    inner = _STATE_MESSAGE.match(state_message) if isinstance(state_message, str) else None
    return inner["text"] if inner and inner["error"] in _error_names(TaoflowError) else None


def _user_error_text(name: str, arg: str) -> str | None:
    """The message of a TaoflowError from its repr's class name and argument, else None."""
    if name not in _error_names(TaoflowError):
        return None
    try:
        text = ast.literal_eval(arg)
    except (ValueError, SyntaxError):
        return None
    return text if isinstance(text, str) else None


def _error_names(base: type) -> set[str]:
    names = {base.__name__}
    for sub in base.__subclasses__():
        names |= _error_names(sub)
    return names


_FILTERS = (UserErrorFilter(), RedactingFilter())  # clean first, then scrub what is left


def install_log_filters() -> int:
    """Put the filters on every handler of the root logger and of Prefect's loggers (idempotent).

    Returns how many handlers got them now. Call it after Prefect configured logging (importing
    `prefect.main`, e.g. `from prefect import flow`, does that): when a flow module is imported
    and when a flow starts.

    >>> import prefect.main; install_log_filters() >= 0
    True
    """
    loggers = [logging.getLogger()] + [
        logger
        for name, logger in list(logging.Logger.manager.loggerDict.items())
        if isinstance(logger, logging.Logger) and name.split(".", 1)[0] in _PREFIXES
    ]
    added = 0
    for logger in loggers:
        for handler in logger.handlers:
            if _FILTERS[0] not in handler.filters:
                for log_filter in _FILTERS:
                    handler.addFilter(log_filter)
                added += 1
    return added
