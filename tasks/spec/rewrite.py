"""Rewrite a spec's locations, epochs and chosen fields while keeping every other byte.

Edits are splices over the tokens of the concrete syntax tree: a changed value replaces only
its own literal, an added field is inserted in the indentation style of its block. Comments,
commented-out paths, spacing and quotes elsewhere stay exactly as the user wrote them.
"""

from __future__ import annotations

import difflib
import posixpath
import re
from dataclasses import asdict, dataclass

from tasks.errors import Problem, SpecError
from tasks.spec.schema import FieldSchema, MessageSchema, Schema, load_schema, map_key, walk
from tasks.spec.syntax import Document, FieldNode, ListValue, MessageNode, Scalar, parse
from tasks.spec.values import format_literal, override_value


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
class RewriteResult:
    text: str
    changes: list[Change]
    diff: str  # unified diff of original -> rewritten ("" when nothing changed)


@dataclass(frozen=True)
class _Edit:
    start: int
    end: int
    text: str
    change: Change


def rebase_path(value: str, rebasings: dict[str, str]) -> tuple[str, str] | None:
    """(new value, matching reference) for `value`, or None when no reference is a path prefix of it.

    Matching is on whole path components after normalisation (`..`, `.`, doubled and trailing
    slashes), so `/data/train` matches `/data/train` and `/data/train/x/*`, never `/data/training`.
    The longest matching reference wins; a glob tail or trailing slash of the value is kept.
    """
    if not value:
        return None
    norm = posixpath.normpath(value)
    best: tuple[str, str, str] | None = None
    for ref, actual in rebasings.items():
        ref_norm = posixpath.normpath(ref)
        if norm == ref_norm:
            rest = ""
        elif norm.startswith(ref_norm.rstrip("/") + "/"):
            rest = norm[len(ref_norm.rstrip("/")) :]
        else:
            continue
        if best is None or len(ref_norm) > len(posixpath.normpath(best[0])):
            best = (ref, actual, rest)
    if best is None:
        return None
    ref, actual, rest = best
    base = actual.rstrip("/") if actual.strip("/") else actual[:1]
    new = (base + rest) if base != "/" else ("/" + rest.lstrip("/"))
    if value.endswith("/") and not new.endswith("/"):
        new += "/"
    return new, ref


def rewrite_document(
    doc: Document,
    rebasings: dict[str, str] | None = None,
    num_epochs: int | None = None,
    overrides: dict[str, str] | None = None,
    schema: Schema | None = None,
) -> RewriteResult:
    schema = schema or load_schema()
    edits: list[_Edit] = []
    rebasings = dict(rebasings or {})
    for ref in rebasings:
        if not ref or not ref.strip():
            raise SpecError("a rebasing has an empty reference", fix="give the path written in the spec, e.g. /workspace/data")
    used: set[str] = set()
    path_values = []
    for b in walk(doc, schema):
        if not (b.schema.path and isinstance(b.value, Scalar) and b.value.kind == "string"):
            continue
        path_values.append(b)
        hit = rebase_path(str(b.value.value), rebasings)
        if hit is None:
            continue
        new, ref = hit
        used.add(ref)
        edits.append(_replace(doc, b.value, new, b.path, f"rebase {ref} -> {rebasings[ref]}", quote=True))
    unmatched = [ref for ref in rebasings if ref not in used]
    if unmatched:
        raise _unmatched_error(doc, unmatched, path_values)
    settings = dict(overrides or {})
    if num_epochs is not None:
        if isinstance(num_epochs, bool) or not isinstance(num_epochs, int) or num_epochs < 1:
            raise SpecError(f"num_epochs must be a whole number >= 1, got {num_epochs!r}", fix="e.g. num_epochs=5")
        settings.setdefault("training_config.num_epochs", str(num_epochs))
    for dotted, raw in settings.items():
        edits.append(_override(doc, schema, dotted, raw))
    text = _apply(doc, edits)
    try:
        parse(text, doc.file, doc.kind)
    except SpecError as exc:  # pragma: no cover - a bug in the rewrite, never in the input
        raise SpecError("the rewritten spec does not parse; this is a bug in taoflow", problems=exc.problems) from exc
    name = doc.file or "spec"
    diff = "".join(
        difflib.unified_diff(
            doc.text.splitlines(keepends=True), text.splitlines(keepends=True), f"a/{name}", f"b/{name}"
        )
    )
    changes = [e.change for e in sorted(edits, key=lambda e: e.start)]
    return RewriteResult(text, changes, diff)


def _replace(doc: Document, scalar: Scalar, new_text: str, path: str, reason: str, quote: bool) -> _Edit:
    start, end = doc.span(scalar.first, scalar.last)
    literal = format_literal(new_text, doc.tokens[scalar.first].text[0]) if quote else new_text
    line = doc.where(scalar.first)[0]
    old = str(scalar.value) if scalar.kind == "string" else scalar.text
    return _Edit(start, end, literal, Change(path, line, old, new_text, reason))


def _unmatched_error(doc: Document, unmatched: list[str], path_values) -> SpecError:
    listed = "\n".join(f"      line {doc.where(b.value.first)[0]}: {b.path} = {b.value.value}" for b in path_values)
    problems = [
        Problem(
            "unmatched-reference",
            f"the reference {ref!r} matches no path in the spec",
            file=doc.file,
            hint="use one of the spec's paths below (or a folder above one of them)",
        )
        for ref in unmatched
    ]
    return SpecError(
        f"{len(unmatched)} spec reference(s) match no path field; the spec's paths are:\n"
        + (listed or "      (none)"),
        where=doc.file,
        problems=problems,
        fix="correct the specfile_reference_* values to paths written in the spec (they are matched on whole folders)",
    )


_STEP = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:\[([^\]]*)\])?(?:\.|$)")


def _override(doc: Document, schema: Schema, dotted: str, raw: str) -> _Edit:
    steps = _split_path(dotted)
    node: MessageNode = doc.root
    msg = schema.root(doc.kind)
    for i, (name, sel) in enumerate(steps):
        f = _field(msg, name, dotted, schema)
        occurrences = [fn for fn in node.fields if fn.name == name]
        last_step = i == len(steps) - 1
        if last_step:
            return _set_scalar(doc, schema, node, f, occurrences, sel, dotted, raw)
        if not (schema.is_message(f) or f.label == "map"):
            raise SpecError(f"{dotted}: {name} is a value, it has no fields", fix=f"end the path at {name}")
        items = _items(occurrences)
        if f.label == "map":
            entry = next((e for e in items if isinstance(e, MessageNode) and map_key(e) == sel), None)
            value = next((fn.value for fn in entry.fields if fn.name == "value"), None) if entry else None
            if not isinstance(value, MessageNode):
                keys = [map_key(e) for e in items if isinstance(e, MessageNode)]
                raise SpecError(f"{dotted}: {name} has no entry [{sel}]", fix=f"use one of its keys: {keys}")
            node = value
        elif f.label == "repeated":
            if sel is None or not sel.isdigit() or int(sel) >= len(items) or not isinstance(items[int(sel)], MessageNode):
                raise SpecError(f"{dotted}: say which {name} to change, {name}[0] to {name}[{max(len(items) - 1, 0)}]")
            node = items[int(sel)]  # type: ignore[assignment]
        elif items and isinstance(items[-1], MessageNode):
            node = items[-1]
        else:
            return _insert_nested(doc, schema, node, steps[i:], dotted, raw)
        msg = schema.messages[f.type]
    raise SpecError(f"{dotted}: empty field path")  # pragma: no cover - _split_path rejects it


def _split_path(dotted: str) -> list[tuple[str, str | None]]:
    steps, pos = [], 0
    while pos < len(dotted):
        m = _STEP.match(dotted, pos)
        if m is None:
            raise SpecError(f"cannot read the field path {dotted!r}", fix="write it like training_config.num_epochs or dataset_config.data_sources[0].tfrecords_path")
        steps.append((m.group(1), m.group(2)))
        pos = m.end()
    if not steps or dotted.endswith("."):
        raise SpecError(f"cannot read the field path {dotted!r}", fix="write it like training_config.num_epochs")
    return steps


def _field(msg: MessageSchema, name: str, dotted: str, schema: Schema) -> FieldSchema:
    f = msg.fields.get(name)
    if f is None:
        close = difflib.get_close_matches(name, list(msg.fields), n=1, cutoff=0.6)
        raise SpecError(
            f"{dotted}: {msg.name} has no field {name!r}",
            fix=f"did you mean {close[0]!r}?" if close else f"{msg.name} has: {', '.join(msg.fields)}",
        )
    return f


def _items(occurrences: list[FieldNode]) -> list:
    out: list = []
    for fn in occurrences:
        out.extend(fn.value.items if isinstance(fn.value, ListValue) else [fn.value])
    return out


def _set_scalar(
    doc: Document,
    schema: Schema,
    node: MessageNode,
    f: FieldSchema,
    occurrences: list[FieldNode],
    sel: str | None,
    dotted: str,
    raw: str,
) -> _Edit:
    if schema.is_message(f) or f.label == "map":
        raise SpecError(f"{dotted} is a block, not a value", fix="name one of its fields, e.g. " + dotted + ".<field>")
    literal = override_value(f, raw, schema, dotted)
    items = _items(occurrences)
    if f.label == "repeated":
        if sel is None or not sel.isdigit() or int(sel) >= len(items):
            raise SpecError(f"{dotted}: {f.name} is repeated; say which one, {f.name}[0] to {f.name}[{max(len(items) - 1, 0)}]")
        target = items[int(sel)]
    elif items:
        target = items[-1]  # the occurrence TAO reads
    else:
        return _insert(doc, node, [f"{f.name}: {literal}"], dotted, literal)
    if not isinstance(target, Scalar):
        raise SpecError(f"{dotted} is written as a block in the spec, not a value")
    return _replace(doc, target, literal, dotted, "set", quote=False)


def _insert_nested(
    doc: Document, schema: Schema, node: MessageNode, steps: list[tuple[str, str | None]], dotted: str, raw: str
) -> _Edit:
    """Add missing singular blocks down to the field: `a { b { c: v } }` in the file's style."""
    unit = _indent_unit(doc)
    lines: list[str] = []
    depth = 0
    for name, sel in steps[:-1]:
        if sel is not None:
            raise SpecError(f"{dotted}: {name}[{sel}] does not exist", fix="only existing repeated entries and map keys can be set")
        lines.append(unit * depth + f"{name} {{")
        depth += 1
    literal = override_value(_resolve(schema, doc, dotted), raw, schema, dotted)
    lines.append(unit * depth + f"{steps[-1][0]}: {literal}")
    for d in range(depth - 1, -1, -1):
        lines.append(unit * d + "}")
    return _insert(doc, node, lines, dotted, literal)


def _resolve(schema: Schema, doc: Document, dotted: str) -> FieldSchema:
    msg = schema.root(doc.kind)
    steps = _split_path(dotted)
    for name, _sel in steps[:-1]:
        f = _field(msg, name, dotted, schema)
        msg = schema.messages[f.type]
    return _field(msg, steps[-1][0], dotted, schema)


def _insert(doc: Document, node: MessageNode, lines: list[str], dotted: str, literal: str) -> _Edit:
    nl = "\r\n" if "\r\n" in doc.text else "\n"
    unit = _indent_unit(doc)
    if node.first is None:  # the top level: append at the end of the file
        pos = len(doc.text)
        lead = "" if not doc.text or doc.text.endswith("\n") else nl
        text = lead + nl.join(lines) + nl
        line = doc.text.count("\n") + 1 + (1 if lead else 0)
        return _Edit(pos, pos, text, Change(dotted, line, None, literal, "add"))
    parent_indent = _line_indent(doc, node.first)
    if node.fields:
        first_field = node.fields[0].name_token
        same_line = doc.tokens[first_field].line == doc.tokens[node.first].line
        indent = parent_indent + unit if same_line else _line_indent(doc, first_field)
        anchor = node.fields[-1].last
    else:
        indent = parent_indent + unit
        anchor = node.first
    pos, at_line_end = _after(doc, anchor)
    text = "".join(nl + indent + ln for ln in lines)
    if not node.fields and not at_line_end:
        text += nl + parent_indent  # `name {}` on one line: put the closer on its own line
    line = doc.tokens[anchor].line + 1
    return _Edit(pos, pos, text, Change(dotted, line, None, literal, "add"))


def _after(doc: Document, anchor: int) -> tuple[int, bool]:
    """Where to insert after token `anchor`: the end of its line if only trivia follows, else right after it."""
    for tok in doc.tokens[anchor + 1 :]:
        if tok.kind == "comment" or (tok.kind == "ws" and "\n" not in tok.text):
            continue
        if tok.kind == "ws":
            cut = tok.text.index("\n")
            if cut and tok.text[cut - 1] == "\r":
                cut -= 1
            return tok.start + cut, True
        if tok.kind == "eof":
            return tok.start, True
        break
    return doc.tokens[anchor].end, False


def _line_indent(doc: Document, token: int) -> str:
    tok = doc.tokens[token]
    start = tok.start - (tok.column - 1)
    head = doc.text[start : tok.start]
    return head[: len(head) - len(head.lstrip(" \t"))]


def _indent_unit(doc: Document) -> str:
    """The file's indentation step: the smallest indentation of any line (two spaces if none)."""
    best = None
    for m in re.finditer(r"\n([ \t]+)\S", doc.text):
        ind = m.group(1)
        if best is None or len(ind) < len(best):
            best = ind
    return best or "  "


def _apply(doc: Document, edits: list[_Edit]) -> str:
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
