"""Literals for values taoflow writes into a spec: quoted strings and checked `--set` values."""

from __future__ import annotations

from tasks.errors import SpecError
from tasks.spec.schema import BadValue, FieldSchema, Schema, coerce
from tasks.spec.syntax import Scalar, parse

_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def format_literal(value: str, quote: str = '"') -> str:
    """`value` as a text-format string literal in the given quote style."""
    out = []
    for ch in value:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ch == quote:
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return quote + "".join(out) + quote


def override_value(f: FieldSchema, raw: str, schema: Schema, dotted: str) -> str:
    """The literal to write for `--set dotted=raw`, checked against the field's type.

    Strings are taken verbatim (quotes are added); every other type must be a literal of
    that type as it would appear in the spec (`5`, `0.5`, `true`, `L1`).
    """
    if f.type == "string":
        return format_literal(raw)
    text = raw.strip()
    try:
        doc = parse(f"{f.name}: {text}")
    except SpecError:
        doc = None
    value = doc.root.fields[0].value if doc is not None and len(doc.root.fields) == 1 else None
    if not isinstance(value, Scalar):
        raise SpecError(f"--set {dotted}={raw}: not a single {f.type} value", fix=f"give one {f.type} value")
    try:
        coerce(value, f, schema)
    except BadValue as exc:
        raise SpecError(f"--set {dotted}={raw}: {exc}", fix=f"give a {f.type} value") from None
    return text
