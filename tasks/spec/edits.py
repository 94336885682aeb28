"""Splices over a parsed spec: each edit replaces a span of the original text (or inserts at a point).

Shared by the rebasing (`tasks.spec.rewrite`) and the `--set` overrides (`tasks.spec.overrides`),
so both keep every byte they do not change.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from tasks.errors import SpecError
from tasks.spec.syntax import Document, Scalar
from tasks.spec.values import format_literal


@dataclass(frozen=True)
class Change:
    """One edit, for reports: which field, on which line of the original, from what to what."""

    field: str
    line: int
    old: str | None  # None when the field was added
    new: str
    reason: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Edit:
    start: int
    end: int
    text: str
    change: Change


def replace_scalar(doc: Document, scalar: Scalar, new_text: str, path: str, reason: str, quote: bool) -> Edit:
    """Replace one literal (all its adjacent strings) by `new_text`, quoted in the literal's own quote style."""
    start, end = doc.span(scalar.first, scalar.last)
    literal = format_literal(new_text, doc.tokens[scalar.first].text[0]) if quote else new_text
    line = doc.where(scalar.first)[0]
    old = str(scalar.value) if scalar.kind == "string" else scalar.text
    return Edit(start, end, literal, Change(path, line, old, new_text, reason))


def apply_edits(doc: Document, edits: list[Edit]) -> str:
    """The text with every edit spliced in; two edits of one span are a `SpecError`."""
    ordered = sorted(enumerate(edits), key=lambda ie: (ie[1].start, ie[0]))
    out, pos = [], 0
    for _, e in ordered:
        if e.start < pos:
            raise SpecError(
                f"{e.change.field} is changed twice (by a rebasing and an override, or two overrides)",
                fix="give each field one new value",
            )
        out.append(doc.text[pos : e.start])
        out.append(e.text)
        pos = e.end
    out.append(doc.text[pos:])
    return "".join(out)
