"""The dataset validator's check codes: one table (`checks.json`) of code, severity, title, what TAO
does with such input, and how to fix it.

Codes are stable: reports, docs/preflight.md and users' suppress-lists refer to them, so a
code is never renamed or reused; a retired check keeps its row.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tasks.errors import Problem, Severity


@dataclass(frozen=True)
class Check:
    code: str
    severity: Severity
    title: str
    #: What TAO does with the input if nothing stops it (why the check exists).
    tao_behaviour: str
    fix: str


#: The table itself is data (`checks.json`, in the catalog's order): one row per code.
_CHECKS = [Check(**row) for row in json.loads((Path(__file__).with_name("checks.json")).read_text(encoding="utf-8"))]

CHECKS: dict[str, Check] = {c.code: c for c in _CHECKS}


def problem(code: str, message: str, *, file: str | None = None, line: int | None = None,
            severity: Severity | None = None, fix: str | None = None) -> Problem:
    """A finding for a known code, carrying the table's severity and fix (or this finding's own `fix`)."""
    check = CHECKS[code]
    return Problem(code, message, severity or check.severity, file=file, line=line, hint=fix or check.fix)
