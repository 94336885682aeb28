"""Checks of a parsed spec: every problem at once, each with line:col.

Two layers, reported together:
1. structure, where TAO's parser (`text_format.Merge`) refuses the spec: unknown fields (with
   "did you mean"), values of the wrong type, bad enum names, lists where one value belongs, a
   value list without its colon, strings that are no valid UTF-8. These are the only errors a
   spec's *syntax* can cause, and they agree with TAO's parser on every input (tests/spec/
   test_against_tao.py). What TAO reads over without a word (a value or block written twice, two
   members of a oneof, a map key given twice) and literals protobuf 3.20.x reads differently are
   warnings that say what TAO really does;
2. TAO 5's spec validator and run-time rules on what TAO reads (`tasks.spec.validator`).
"""

from __future__ import annotations

import difflib

from tasks.errors import Problem, SpecError
from tasks.spec.reading import Overwrite, Reading, read_document
from tasks.spec.schema import BadValue, FieldSchema, MessageSchema, Schema, coerce, load_schema
from tasks.spec.syntax import Document, FieldNode, ListValue, MessageNode, Scalar
from tasks.spec.validator import Findings, validate_reading

#: Codes of the errors TAO's parser itself would raise; everything else is TAO's validator or later.
STRUCTURE_CODES = frozenset({"syntax", "unknown-field", "wrong-type", "bad-enum", "not-repeated", "missing-colon"})


def check_document(doc: Document, schema: Schema | None = None) -> list[Problem]:
    """All problems of `doc` (errors and warnings), in file order.

    >>> from tasks.spec.syntax import parse
    >>> [p.severity for p in check_document(parse("random_seed: 1 random_seed: 2", kind="train"))
    ...  if p.code == "duplicate-field"]
    ['warning']
    """
    schema = schema or load_schema()
    checker = _Structure(doc, schema)
    checker.message(doc.root, schema.root(doc.kind))
    reading = read_document(doc, schema)
    problems = checker.problems + overwrite_warnings(doc, reading) + validate_reading(doc, reading, schema)
    return sorted(problems, key=lambda p: (p.line or 0, p.column or 0))


def require_valid(doc: Document, schema: Schema | None = None) -> list[Problem]:
    """Raise one `SpecError` listing every error; return the warnings when there is none.

    >>> from tasks.spec import parse_spec
    >>> try:
    ...     require_valid(parse_spec("training_config { num_epochs: 0.5 }", "spec.txt"))
    ... except SpecError as exc:
    ...     print(exc.where, "wrong-type" in {p.code for p in exc.problems})
    spec.txt True
    """
    problems = check_document(doc, schema)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise SpecError(
            f"{len(errors)} error(s) in the {doc.kind} spec",
            where=doc.file,
            problems=problems,
            fix="correct the lines listed above; `taoflow spec check SPEC` re-checks the file",
        )
    return problems


class _Structure(Findings):
    def message(self, node: MessageNode, msg: MessageSchema) -> None:
        for fnode in node.fields:
            f = msg.fields.get(fnode.name)
            if f is None:
                self.unknown(fnode, msg)
            else:
                self.field_value(fnode, f)

    def field_value(self, fnode: FieldNode, f: FieldSchema) -> None:
        wants_block = f.label == "map" or self.schema.is_message(f)
        items: list = [fnode.value]
        if isinstance(fnode.value, ListValue):
            items = fnode.value.items
            if not f.repeated:
                self.add("not-repeated", f"{f.name} takes one value, not a list", fnode.value.first,
                         f"write `{f.name}: value`" if not wants_block else f"write `{f.name} {{ ... }}`")
                return
            if not wants_block and fnode.colon is None:
                self.add("missing-colon", f"a list of values for {f.name} needs a colon: `{f.name}: [...]`",
                         fnode.value.first, f"write `{f.name}: [a, b]` (only blocks may omit the colon)")
        for item in items:
            if wants_block and not isinstance(item, MessageNode):
                self.add("wrong-type", f"{f.name} is a block ({f.type}), not a value", item.first, f"write `{f.name} {{ ... }}`")
            elif not wants_block and isinstance(item, MessageNode):
                self.add("wrong-type", f"{f.name} is a value ({f.type}), not a block", item.first, f"write `{f.name}: value`")
            elif isinstance(item, MessageNode):
                self.message(item, self.schema.map_entry(f) if f.label == "map" else self.schema.messages[f.type])
            else:
                self.scalar(item, f)

    def scalar(self, item: Scalar, f: FieldSchema) -> None:
        new = old = None
        try:
            new = coerce(item, f, self.schema)
        except BadValue as exc:
            new_error = str(exc)
        try:
            old = coerce(item, f, self.schema, old=True)
        except BadValue:
            old = None
        if new is None and old is None:
            self.type_error(item, f, new_error)
        elif new is None or old is None or not _same(new, old):
            self.add("protobuf-version", _version_message(item, f, new, old), item.first,
                     "write the value so both read it alike (a plain decimal number, no \\u or \\NNN escapes)",
                     "warning")
        elif self.schema.is_enum(f) and isinstance(new, int):
            self.add("unknown-enum-number", f"{f.name}: {item.text} names no value of {f.type}; TAO's parser "
                     "accepts any number for an enum and TAO then runs with an unnamed mode", item.first,
                     f"use one of {', '.join(self.schema.enums[f.type])}", "warning")

    def type_error(self, item: Scalar, f: FieldSchema, message: str) -> None:
        if self.schema.is_enum(f):
            close = difflib.get_close_matches(str(item.value).upper(), self.schema.enums[f.type], n=1, cutoff=0.5)
            hint = f"did you mean {close[0]}?" if close else f"use one of {', '.join(self.schema.enums[f.type])}"
            self.add("bad-enum", message, item.first, hint)
            return
        hint = None
        if f.type in ("int32", "uint32", "int64", "uint64") and item.kind == "token" and "." in (item.value or ""):
            hint = f"write a whole number; TAO 5 reads {f.name} as {f.type} (older TLT specs wrote a fraction here)"
        elif item.kind == "token" and item.value in ("-", "+"):
            hint = "write the sign right before the number, with no space or comment between them"
        self.add("wrong-type", message, item.first, hint)

    def unknown(self, fnode: FieldNode, msg: MessageSchema) -> None:
        close = difflib.get_close_matches(fnode.name, list(msg.fields), n=1, cutoff=0.6)
        other_kind = "dataset_convert" if self.doc.kind == "train" else "train"
        if msg is self.schema.root(self.doc.kind) and fnode.name in self.schema.root(other_kind).fields:
            hint = f"this looks like a {other_kind} spec; check it with --kind {other_kind}"
        elif close:
            hint = f"did you mean {close[0]!r}?"
        else:
            owners = self.schema.messages_with(fnode.name)
            if owners:
                hint = f"{fnode.name} belongs in {' or '.join(owners)}, not in {msg.name}"
            else:
                hint = f"remove it; {msg.name} has: {', '.join(msg.fields)}"
        self.add("unknown-field", f"unknown field {fnode.name!r} in {msg.name}", fnode.name_token, hint)


def _same(a: object, b: object) -> bool:
    return a == b or (a != a and b != b)  # NaN reads alike in both


def _version_message(item: Scalar, f: FieldSchema, new: object, old: object) -> str:
    def said(value: object) -> str:
        return "refuses it" if value is None else f"reads {value!r}"

    return (f"{f.name}: {item.text} is read differently by protobuf versions: the current protobuf "
            f"{said(new)}, protobuf 3.20.x (TAO's TF1 containers) {said(old)}")


def overwrite_warnings(doc: Document, reading: Reading) -> list[Problem]:
    """What TAO reads over without a word, said as a warning with what it really does."""
    return [_overwrite(doc, o) for o in reading.overwrites]


def _overwrite(doc: Document, o: Overwrite) -> Problem:
    first = doc.where(o.earlier)[0]
    if o.kind == "scalar":
        return doc.problem("duplicate-field", f"{o.name} is set twice in {o.message} (first at line {first}); "
                        "TAO uses the last value", o.later, "keep one", "warning")
    if o.kind == "block":
        return doc.problem("duplicate-block", f"{o.name} is written twice in {o.message} (first at line {first}); "
                        "TAO merges this block into the first one (its values win where both set one)", o.later,
                        "write one block", "warning")
    if o.kind == "oneof":
        return doc.problem("oneof-conflict", f"{o.name} and {o.other} (line {first}) are both set, but only one "
                        f"may be; TAO keeps {o.name} (the later one) and drops {o.other}", o.later,
                        f"remove {o.other} or {o.name}", "warning")
    return doc.problem("duplicate-key", f"{o.name} has the key {o.other!r} twice (first at line {first}); TAO "
                    "keeps the last entry whole (it does not merge the two)", o.later, "keep one entry", "warning")
