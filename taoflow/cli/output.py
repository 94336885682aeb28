"""Terminal output shared by the commands: errors, progress, JSON."""

from __future__ import annotations

import json
import re
import sys
from typing import Any

from rich.console import Console

from tasks.errors import TaoflowError

#: Control characters (terminal escapes among them) and line breaks: rich prints ESC as it is.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]+")

#: stderr for diagnostics, so stdout stays clean for --json and piping.
err_console = Console(stderr=True, highlight=False, soft_wrap=True)
out_console = Console(highlight=False, soft_wrap=True)


def print_error(exc: TaoflowError | str) -> None:
    text = exc.render() if isinstance(exc, TaoflowError) else str(exc)
    err_console.print(f"error: {text}", markup=False)


def plain(text: str) -> str:
    """Text read from stored data (a model card) as one inert line: control characters become a space.

    >>> plain("pruning cost\\x1b[2J 0.5 points\\n")
    'pruning cost [2J 0.5 points '
    """
    return _CONTROL.sub(" ", text)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def is_terminal() -> bool:
    return err_console.is_terminal
