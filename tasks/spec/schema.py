"""The DetectNet_v2 spec schema, loaded from our own `schema.json`, and typed scalar values.

The schema is data so it can be read and reviewed next to TAO's protos; this module only
gives it types and answers "is this literal a valid value of that field type".
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any, Iterator

from tasks.spec.syntax import Document, FieldNode, ListValue, MessageNode, Scalar

SCALAR_TYPES = ("int32", "uint32", "int64", "uint64", "float", "double", "bool", "string")
KINDS = ("train", "dataset_convert")
_INT_RANGES = {
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint64": (0, 2**64 - 1),
}
_BOOLS = {"true": True, "True": True, "t": True, "false": False, "False": False, "f": False}
_FLOAT_WORDS = {"inf": math.inf, "infinity": math.inf, "nan": math.nan}


@dataclass(frozen=True, slots=True)
class FieldSchema:
    name: str
    type: str  # a scalar type, an enum name or a message name
    label: str = "optional"  # optional | repeated | map
    key: str | None = None  # map key type
    oneof: str | None = None
    path: str | None = None  # glob | dir | file | relative
    secret: bool = False

    @property
    def repeated(self) -> bool:
        return self.label in ("repeated", "map")


@dataclass(frozen=True)
class MessageSchema:
    name: str
    fields: dict[str, FieldSchema]
    oneofs: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Schema:
    roots: dict[str, str]
    enums: dict[str, tuple[str, ...]]
    messages: dict[str, MessageSchema]
    required: dict[str, tuple[str, ...]]  # train validator: message -> fields that must be present/non-empty
    value_rules: dict[str, dict[str, Any]]  # train validator: field name -> rule

    def root(self, kind: str) -> MessageSchema:
        return self.messages[self.roots[kind]]

    def is_message(self, f: FieldSchema) -> bool:
        return f.type in self.messages

    def is_enum(self, f: FieldSchema) -> bool:
        return f.type in self.enums

    def map_entry(self, f: FieldSchema) -> MessageSchema:
        """The implicit `{key, value}` message of a map field."""
        return MessageSchema(
            f"{f.name}.entry",
            {"key": FieldSchema("key", f.key or "string"), "value": FieldSchema("value", f.type)},
        )

    def messages_with(self, field_name: str) -> list[str]:
        return [m.name for m in self.messages.values() if field_name in m.fields]


@lru_cache(maxsize=1)
def load_schema() -> Schema:
    data = json.loads(resources.files("tasks.spec").joinpath("schema.json").read_text(encoding="utf-8"))
    messages = {}
    for name, fields in data["messages"].items():
        parsed = {fname: FieldSchema(fname, **spec) for fname, spec in fields.items()}
        oneofs: dict[str, list[str]] = {}
        for f in parsed.values():
            if f.oneof:
                oneofs.setdefault(f.oneof, []).append(f.name)
        messages[name] = MessageSchema(name, parsed, {k: tuple(v) for k, v in oneofs.items()})
    train = data["validator"]["train"]
    return Schema(
        roots=data["roots"],
        enums={k: tuple(v) for k, v in data["enums"].items()},
        messages=messages,
        required={k: tuple(v) for k, v in train["required"].items()},
        value_rules=train["values"],
    )


class BadValue(ValueError):
    """A literal that is not a value of the field's type; the message says what was expected."""


def coerce(scalar: Scalar, f: FieldSchema, schema: Schema) -> Any:
    """The typed value of `scalar` for field `f`, or `BadValue` saying why it is not one."""
    t = f.type
    if t == "string":
        if scalar.kind != "string":
            raise BadValue(f"{f.name} is a string, got {scalar.text}; put it in quotes")
        return scalar.value
    if t in _INT_RANGES:
        if scalar.kind != "number" or not scalar.is_int:
            raise BadValue(f"{f.name} is {t} (a whole number), got {scalar.text}")
        lo, hi = _INT_RANGES[t]
        if not lo <= scalar.value <= hi:  # type: ignore[operator]
            raise BadValue(f"{f.name} is {t}, {scalar.text} is out of its range {lo}..{hi}")
        return scalar.value
    if t in ("float", "double"):
        if scalar.kind == "number":
            return float(scalar.value)
        word = str(scalar.value).lstrip("-").lower()
        if scalar.kind == "ident" and word in _FLOAT_WORDS:
            return -_FLOAT_WORDS[word] if str(scalar.value).startswith("-") else _FLOAT_WORDS[word]
        raise BadValue(f"{f.name} is {t} (a number), got {scalar.text}")
    if t == "bool":
        if scalar.kind == "ident" and scalar.value in _BOOLS:
            return _BOOLS[scalar.value]  # type: ignore[index]
        if scalar.kind == "number" and scalar.is_int and scalar.value in (0, 1):
            return bool(scalar.value)
        raise BadValue(f"{f.name} is bool, got {scalar.text}; write true or false")
    if t in schema.enums:
        names = schema.enums[t]
        if scalar.kind == "ident" and scalar.value in names:
            return scalar.value
        if scalar.kind == "number" and scalar.is_int and 0 <= scalar.value < len(names):  # type: ignore[operator]
            return names[scalar.value]  # type: ignore[index]
        raise BadValue(f"{f.name} is one of {', '.join(names)}; got {scalar.text}")
    raise BadValue(f"{f.name} is a block ({t}); write `{f.name} {{ ... }}`")


def default_value(f: FieldSchema, schema: Schema) -> Any:
    """What proto3 reads for an unset scalar."""
    if f.type == "string":
        return ""
    if f.type == "bool":
        return False
    if f.type in schema.enums:
        return schema.enums[f.type][0]
    if f.type in ("float", "double"):
        return 0.0
    return 0


@dataclass(frozen=True, slots=True)
class Bound:
    """A field occurrence tied to its schema, with its dotted path (`a.b[0].c`, maps as `m[key]`)."""

    path: str
    schema: FieldSchema
    node: FieldNode
    value: Scalar | MessageNode  # one element: list values are flattened into several `Bound`s
    message: MessageSchema | None  # for blocks: the schema of the block's contents


def walk(doc: Document, schema: Schema | None = None) -> Iterator[Bound]:
    """Every known field occurrence of `doc`, depth first in file order (unknown names skipped)."""
    schema = schema or load_schema()
    yield from _walk(doc.root, schema.root(doc.kind), "", schema)


def _walk(node: MessageNode, msg: MessageSchema, prefix: str, schema: Schema) -> Iterator[Bound]:
    counts: dict[str, int] = {}
    for fnode in node.fields:
        f = msg.fields.get(fnode.name)
        if f is None:
            continue
        items = fnode.value.items if isinstance(fnode.value, ListValue) else [fnode.value]
        for item in items:
            path = prefix + f.name
            sub: MessageSchema | None = None
            if f.label == "map" and isinstance(item, MessageNode):
                sub = schema.map_entry(f)
                path += f"[{map_key(item) or ''}]"
            elif f.label == "repeated":
                path += f"[{counts.get(f.name, 0)}]"
                counts[f.name] = counts.get(f.name, 0) + 1
            if sub is None and schema.is_message(f):
                sub = schema.messages[f.type]
            yield Bound(path, f, fnode, item, sub)
            if isinstance(item, MessageNode) and sub is not None:
                if f.label == "map":
                    yield from _walk_map_value(item, f, path, schema)
                else:
                    yield from _walk(item, sub, path + ".", schema)


def _walk_map_value(entry: MessageNode, f: FieldSchema, path: str, schema: Schema) -> Iterator[Bound]:
    # Paths of map values skip the `.value` hop: `target_class_config[car].clustering_config`.
    if f.type not in schema.messages:
        return
    for fnode in entry.fields:
        if fnode.name == "value" and isinstance(fnode.value, MessageNode):
            yield from _walk(fnode.value, schema.messages[f.type], path + ".", schema)


def map_key(entry: MessageNode) -> str | None:
    for fnode in entry.fields:
        if fnode.name == "key" and isinstance(fnode.value, Scalar):
            return str(fnode.value.value)
    return None


def index(doc: Document, schema: Schema | None = None) -> dict[str, Bound]:
    """Known field occurrences by dotted path; for a duplicated field the last one (as TAO reads it)."""
    return {b.path: b for b in walk(doc, schema)}
