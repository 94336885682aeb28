"""The DetectNet_v2 spec schema, loaded from our own `schema.json`, and typed scalar values.

The schema is data so it can be read and reviewed next to TAO's protos; this module only
gives it types and answers "is this literal a valid value of that field type".
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any, Iterator

from tasks.spec.literals import INT_RANGES, BadLiteral, parse_bool, parse_enum, parse_float, parse_float_old, parse_int
from tasks.spec.syntax import Document, FieldNode, ListValue, MessageNode, Scalar

SCALAR_TYPES = ("int32", "uint32", "int64", "uint64", "float", "double", "bool", "string")
KINDS = ("train", "dataset_convert")


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
    required_root: tuple[str, ...]  # train validator: Experiment fields that must be set
    required: dict[str, tuple[str, ...]]  # train validator: field name -> fields its message must set
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
        required_root=tuple(train["required_root"]),
        required={k: tuple(v) for k, v in train["required"].items()},
        value_rules=train["values"],
    )


class BadValue(ValueError):
    """A literal that is not a value of the field's type; the message says what was expected."""


def coerce(scalar: Scalar, f: FieldSchema, schema: Schema, *, old: bool = False) -> Any:
    """The typed value of `scalar` for field `f` as TAO's parser reads it, or `BadValue` saying why not.

    `old=True` reads it as protobuf 3.20.x does (see `tasks.spec.literals`). Enum values come back
    as their name, or as a number when it names no value (proto3 enums accept any int32).

    >>> from tasks.spec.syntax import parse
    >>> s = load_schema(); f = s.messages["TrainingConfig"].fields["num_epochs"]
    >>> coerce(parse("n: 0x1F").root.fields[0].value, f, s)
    31
    """
    t = f.type
    if t == "string":
        if scalar.kind != "string":
            raise BadValue(f"{f.name} is a string, got {scalar.text}; put it in quotes")
        value, error = (scalar.old_value, scalar.old_error) if old else (scalar.value, scalar.error)
        if value is None:
            raise BadValue(f"{f.name}: {error}")
        return value
    if scalar.kind == "string" or scalar.value is None:
        raise BadValue(f"{f.name} is {_describe_type(t, schema)}, got the string {scalar.text}")
    text = scalar.value
    try:
        if t in INT_RANGES:
            return parse_int(text, t)
        if t in ("float", "double"):
            return parse_float_old(text, t) if old else parse_float(text, t)
        if t == "bool":
            return parse_bool(text)
        if t in schema.enums:
            return parse_enum(text, schema.enums[t])
    except BadLiteral as exc:
        raise BadValue(f"{f.name} is {_describe_type(t, schema)}: {exc}") from None
    raise BadValue(f"{f.name} is a block ({t}); write `{f.name} {{ ... }}`")


def _describe_type(t: str, schema: Schema) -> str:
    if t in INT_RANGES:
        return f"{t} (a whole number)"
    if t in ("float", "double"):
        return f"{t} (a number)"
    if t == "bool":
        return "bool (true or false)"
    if t in schema.enums:
        return "one of " + ", ".join(schema.enums[t])
    return t


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
    """The key of a map entry as TAO reads it (the last `key` written), None when none is written."""
    keys = [f.value for f in entry.fields if f.name == "key" and isinstance(f.value, Scalar)]
    return None if not keys else (keys[-1].value if keys[-1].value is not None else keys[-1].old_value)


def index(doc: Document, schema: Schema | None = None) -> dict[str, Bound]:
    """Known field occurrences by dotted path; for a duplicated field the last one (as TAO reads it)."""
    return {b.path: b for b in walk(doc, schema)}
