"""A request's field problems for people: an unknown name (with the closest known one), and
pydantic's validation errors turned into `Problem`s, each on the line of the file it came from."""

from __future__ import annotations

import difflib
from typing import Mapping

from pydantic import ValidationError

from tasks.errors import Problem


def unknown_field_problem(name: str, known, source: str, line: int | None = None) -> Problem:
    """`unknown-field`, with the closest known name as the hint.

    >>> unknown_field_problem("num_epoch", ["num_epochs", "spec"], "job.yaml", 3).render()
    "job.yaml:3: error unknown-field: unknown field 'num_epoch'\\n    hint: did you mean 'num_epochs'?"
    """
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}?" if close else "remove it; `taoflow run --help` lists the accepted names"
    return Problem("unknown-field", f"unknown field {name!r}", file=source, line=line, hint=hint)


def pydantic_problems(exc: ValidationError, source: str, lines: Mapping[str, int] | None = None) -> list[Problem]:
    """One `invalid-field` per validation error, on the deepest line known for its field."""
    lines = lines or {}
    problems = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or "request"
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        if err["type"] == "missing":
            msg = "required field is missing"
        given = err.get("input")
        if err["type"] != "missing" and "key" not in loc and not isinstance(given, (dict, list)):
            msg += f" (given: {given!r})"
        # The deepest path with a known line: "training_data.location" falls back to "training_data".
        parts = [str(p) for p in err["loc"]]
        line = next((lines[".".join(parts[:n])] for n in range(len(parts), 0, -1) if ".".join(parts[:n]) in lines), None)
        problems.append(Problem("invalid-field", f"{loc}: {msg}", file=source, line=line))
    return problems
