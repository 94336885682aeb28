"""A logging filter that scrubs secrets from every record before a handler writes or sends it.

It sits on the *handlers* (Prefect's console handler on the root logger, its API handlers on
`prefect.flow_runs` / `prefect.task_runs`, ...), not on loggers: a logger's filter sees only
records logged on that logger, while a handler sees every record that reaches it, so a line
that `azure.core`, `urllib3` or Prefect itself logs (Prefect prints a run's raw parameters when
they fail validation) is scrubbed too. Plain `logging`, no Prefect import: the handlers are
found by the logger names Prefect's logging.yml gives them.
"""

from __future__ import annotations

import logging

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


_FILTER = RedactingFilter()


def install_log_redaction() -> int:
    """Put the filter on every handler of the root logger and of Prefect's loggers (idempotent).

    Returns how many handlers got it now. Call it after Prefect configured logging (importing
    `prefect.main`, e.g. `from prefect import flow`, does that): when a flow module is imported
    and when a flow starts.

    >>> import prefect.main; install_log_redaction() >= 0
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
            if _FILTER not in handler.filters:
                handler.addFilter(_FILTER)
                added += 1
    return added
