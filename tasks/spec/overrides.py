"""`--set a.b.c=value` overrides: the value TAO reads is changed, or the field added in the file's style.

Paths follow what TAO reads (`tasks.spec.reading`): a block written twice is one message, so a
field is looked up across all its blocks, and the last occurrence (the one TAO keeps) is the one
replaced; a missing field is added to the last block, where it is read last. Repeated blocks are
chosen by index over all occurrences, map values by key (the last entry with it, which TAO keeps).
"""

from __future__ import annotations

import difflib
import re

from tasks.errors import SpecError
from tasks.spec.edits import Change, Edit, replace_scalar
from tasks.spec.schema import FieldSchema, MessageSchema, Schema, map_key
from tasks.spec.syntax import Document, FieldNode, ListValue, MessageNode, Scalar
from tasks.spec.values import override_value

_STEP = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:\[([^\]]*)\])?(?:\.|$)")


def override_edit(doc: Document, schema: Schema, dotted: str, raw: str) -> Edit:
    r"""The edit that makes TAO read `raw` for the field at `dotted` (see the module doc).

    >>> from tasks.spec.schema import load_schema
    >>> from tasks.spec.syntax import parse
    >>> d = parse("training_config { num_epochs: 3 }\ntraining_config { batch_size_per_gpu: 2 }\n")
    >>> override_edit(d, load_schema(), "training_config.num_epochs", "9").change.reason
    'set'
    >>> override_edit(d, load_schema(), "training_config.checkpoint_interval", "2").change.reason  # into the last block
    'add'
    """
    try:
        return _override_edit(doc, schema, dotted, raw)
    except SpecError as exc:
        # Every finding says where: the spec, and the override that asked for the change.
        if exc.where is None:
            exc.where = f"{doc.file or '<spec>'} (setting {dotted})"
        raise


def _override_edit(doc: Document, schema: Schema, dotted: str, raw: str) -> Edit:
    steps = _split_path(dotted)
    nodes: list[MessageNode] = [doc.root]  # every block of the message TAO merges
    msg = schema.root(doc.kind)
    for i, (name, sel) in enumerate(steps):
        f = _field(msg, name, dotted, schema)
        occurrences = [fn for node in nodes for fn in node.fields if fn.name == name]
        if i == len(steps) - 1:
            return _set_scalar(doc, schema, nodes[-1], f, occurrences, sel, dotted, raw)
        if not (schema.is_message(f) or f.label == "map"):
            raise SpecError(f"{dotted}: {name} is a value, it has no fields", fix=f"end the path at {name}")
        items = _items(occurrences)
        if f.label == "map":
            entries = [e for e in items if isinstance(e, MessageNode) and (map_key(e) or "") == sel]
            values = [fn.value for fn in entries[-1].fields if fn.name == "value"] if entries else []
            nodes = [v for v in values if isinstance(v, MessageNode)]
            if not nodes:
                keys = [map_key(e) for e in items if isinstance(e, MessageNode)]
                raise SpecError(f"{dotted}: {name} has no entry [{sel}]", fix=f"use one of its keys: {keys}")
        elif f.label == "repeated":
            if sel is None or not sel.isdigit() or int(sel) >= len(items) or not isinstance(items[int(sel)], MessageNode):
                raise SpecError(f"{dotted}: say which {name} to change, {name}[0] to {name}[{max(len(items) - 1, 0)}]")
            nodes = [items[int(sel)]]
        elif any(isinstance(item, MessageNode) for item in items):
            nodes = [item for item in items if isinstance(item, MessageNode)]
        else:
            return _insert_nested(doc, schema, nodes[-1], steps[i:], dotted, raw)
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
) -> Edit:
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
    return replace_scalar(doc, target, literal, dotted, "set", quote=False)


def _insert_nested(
    doc: Document, schema: Schema, node: MessageNode, steps: list[tuple[str, str | None]], dotted: str, raw: str
) -> Edit:
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


def _insert(doc: Document, node: MessageNode, lines: list[str], dotted: str, literal: str) -> Edit:
    nl = _line_end(doc.text)
    unit = _indent_unit(doc)
    if node.first is None:  # the top level: append at the end of the file
        pos = len(doc.text)
        lead = "" if not doc.text or doc.text.endswith(("\n", "\r")) else nl
        text = lead + nl.join(lines) + nl
        line = doc.tokens[-1].line + (1 if lead else 0)  # the lexer counts lines as TAO's reading does
        return Edit(pos, pos, text, Change(dotted, line, None, literal, "add"))
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
    return Edit(pos, pos, text, Change(dotted, line, None, literal, "add"))


def insert_after_field(doc: Document, anchor: FieldNode, line: str, dotted: str, literal: str) -> Edit:
    r"""Add `line` on a line of its own after the field `anchor`, indented as `anchor` is.

    >>> from tasks.spec.syntax import parse
    >>> d = parse("model_config {\n  num_layers: 18\n  arch: \"resnet\"\n}\n")
    >>> first = d.root.fields[0].value.fields[0]
    >>> e = insert_after_field(d, first, "load_graph: true", "model_config.load_graph", "true")
    >>> d.text[:e.start] + e.text + d.text[e.end:]
    'model_config {\n  num_layers: 18\n  load_graph: true\n  arch: "resnet"\n}\n'
    """
    nl = "\r\n" if "\r\n" in doc.text else "\n"
    pos, _ = _after(doc, anchor.last)
    text = nl + _line_indent(doc, anchor.name_token) + line
    return Edit(pos, pos, text, Change(dotted, doc.tokens[anchor.last].line + 1, None, literal, "add"))


def _after(doc: Document, anchor: int) -> tuple[int, bool]:
    """Where to insert after token `anchor`: the end of its line if only trivia follows, else right after it."""
    for tok in doc.tokens[anchor + 1 :]:
        breaks = re.search(r"[\r\n]", tok.text) if tok.kind == "ws" else None
        if tok.kind == "comment" or (tok.kind == "ws" and breaks is None):
            continue
        if breaks is not None:
            return tok.start + breaks.start(), True
        if tok.kind == "eof":
            return tok.start, True
        break
    return doc.tokens[anchor].end, False


def _line_indent(doc: Document, token: int) -> str:
    tok = doc.tokens[token]
    start = tok.start - (tok.column - 1)
    head = doc.text[start : tok.start]
    return head[: len(head) - len(head.lstrip(" \t"))]


def _line_end(text: str) -> str:
    """The file's own line end for inserted lines: CRLF, a bare CR (old Mac files) or LF."""
    if "\r\n" in text:
        return "\r\n"
    return "\r" if "\r" in text and "\n" not in text else "\n"


def _indent_unit(doc: Document) -> str:
    """The file's indentation step: the smallest indentation of any line (two spaces if none)."""
    best = None
    for m in re.finditer(r"[\r\n]([ \t]+)\S", doc.text):
        ind = m.group(1)
        if best is None or len(ind) < len(best):
            best = ind
    return best or "  "

