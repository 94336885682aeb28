"""What TAO's parser reads from a spec: the merged message `text_format.Merge` builds.

`Merge` (not `Parse`) is what TAO calls, so a singular value written twice keeps the last one, a
singular block written twice is merged into the first, a map entry replaces an earlier entry
with the same key (a message value is replaced, not merged), a map entry without `key`/`value`
reads as "" (or an empty block), and setting one member of a oneof clears the others. Facts,
TAO's spec-validator rules and the rewrite all work on this reading, never on one occurrence.
Each place where the text says more than TAO reads is kept as an `Overwrite` so the checker can
warn about it, with both lines.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Union

from tasks.spec.schema import BadValue, FieldSchema, MessageSchema, Schema, coerce, default_value, load_schema
from tasks.spec.syntax import Document, ListValue, MessageNode, Scalar


@dataclass(eq=False)
class Read:
    """A scalar value as TAO reads it, and the literal it came from (None: the proto3 default)."""

    value: Any
    scalar: Scalar | None = None
    key_token: int | None = None  # map values: where their key is written (the entry's brace without one)


@dataclass(eq=False)
class Msg:
    """A message as TAO reads it: field name -> Read | Msg | list[Read | Msg] | dict[key, Read | Msg]."""

    schema: MessageSchema
    opener: int | None = None  # token of the first block that opened it (None: top level or implicit)
    fields: dict[str, Any] = field(default_factory=dict)
    written: set[str] = field(default_factory=set)  # names in the text, read or not
    key_token: int | None = None  # map values: where their key is written (the entry's brace without one)

    def get(self, name: str, default: Any = None) -> Any:
        """The plain value of a scalar field (its proto3 default when unset)."""
        read = self.fields.get(name)
        return read.value if isinstance(read, Read) else default

    def sub(self, name: str) -> "Msg | None":
        value = self.fields.get(name)
        return value if isinstance(value, Msg) else None


@dataclass(frozen=True)
class Overwrite:
    """Text TAO reads over: `kind` is "scalar", "block", "oneof" or "map-key"."""

    kind: str
    message: str  # the message type
    name: str  # the field written again (for "oneof": the member that wins)
    earlier: int  # token of the earlier occurrence
    later: int  # token of the occurrence TAO keeps / merges into the earlier one
    other: str | None = None  # "oneof": the member that is dropped; "map-key": the key


@dataclass(eq=False)
class Reading:
    root: Msg
    overwrites: list[Overwrite]


Value = Union[Read, Msg]


def read_document(doc: Document, schema: Schema | None = None) -> Reading:
    """The message TAO builds from `doc`. Values of the wrong type are left out (`check` reports them).

    >>> from tasks.spec.syntax import parse
    >>> r = read_document(parse("training_config { num_epochs: 5 } training_config { num_epochs: 7 }"))
    >>> r.root.sub("training_config").get("num_epochs"), [o.kind for o in r.overwrites]
    (7, ['block', 'scalar'])
    """
    schema = schema or load_schema()
    reader = _Reader(schema)
    root = Msg(schema.root(doc.kind))
    reader.merge(doc.root, root)
    return Reading(root, reader.overwrites)


class _Reader:
    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self.overwrites: list[Overwrite] = []

    def merge(self, node: MessageNode, msg: Msg) -> None:
        for fnode in node.fields:
            f = msg.schema.fields.get(fnode.name)
            if f is None:
                continue
            msg.written.add(f.name)
            items = fnode.value.items if isinstance(fnode.value, ListValue) else [fnode.value]
            wants_block = f.label == "map" or self.schema.is_message(f)
            for item in items:
                if wants_block != isinstance(item, MessageNode):
                    continue  # a type error: TAO stops there; `check` says so
                if f.oneof:
                    self._take_oneof(msg, f, fnode.name_token)
                if f.label == "map":
                    self._map_entry(msg, f, item, fnode.name_token)  # type: ignore[arg-type]
                elif f.label == "repeated":
                    value = self._block(item, f) if wants_block else self._scalar(item, f)  # type: ignore[arg-type]
                    if value is not None:
                        msg.fields.setdefault(f.name, []).append(value)
                elif wants_block:
                    self._singular_block(msg, f, item, fnode.name_token)  # type: ignore[arg-type]
                else:
                    read = self._scalar(item, f)  # type: ignore[arg-type]
                    if read is None:
                        continue
                    earlier = msg.fields.get(f.name)
                    if isinstance(earlier, Read) and earlier.scalar is not None:
                        self.overwrites.append(Overwrite("scalar", msg.schema.name, f.name, earlier.scalar.first,
                                                         item.first))  # type: ignore[union-attr]
                    msg.fields[f.name] = read

    def _scalar(self, item: Scalar, f: FieldSchema) -> Read | None:
        try:
            return Read(coerce(item, f, self.schema), item)
        except BadValue:
            pass
        try:  # refused by the current protobuf, read by 3.20.x: `check` warns, facts use this reading
            return Read(coerce(item, f, self.schema, old=True), item)
        except BadValue:
            return None

    def _block(self, item: MessageNode, f: FieldSchema) -> Msg:
        msg = Msg(self.schema.messages[f.type], item.first)
        self.merge(item, msg)
        return msg

    def _singular_block(self, msg: Msg, f: FieldSchema, item: MessageNode, name_token: int) -> None:
        sub = msg.fields.get(f.name)
        if isinstance(sub, Msg):
            self.overwrites.append(Overwrite("block", msg.schema.name, f.name, sub.opener or 0, name_token))
        else:
            sub = msg.fields[f.name] = Msg(self.schema.messages[f.type], item.first)
        self.merge(item, sub)

    def _take_oneof(self, msg: Msg, f: FieldSchema, name_token: int) -> None:
        for other in msg.schema.oneofs[f.oneof or ""]:
            if other != f.name and other in msg.fields:
                dropped = msg.fields.pop(other)
                where = dropped.scalar.first if isinstance(dropped, Read) and dropped.scalar else dropped.opener
                self.overwrites.append(Overwrite("oneof", msg.schema.name, f.name, where or 0, name_token, other))

    def _map_entry(self, msg: Msg, f: FieldSchema, item: MessageNode, name_token: int) -> None:
        entry = Msg(self.schema.map_entry(f), item.first)
        self.merge(item, entry)
        key = entry.get("key", "")
        key_read = entry.fields.get("key")
        value: Value | None = entry.fields.get("value")
        if value is None:
            value = Msg(self.schema.messages[f.type], item.first) if self.schema.is_message(f) else \
                Read(default_value(f, self.schema))
        elif isinstance(value, Msg):
            value.opener = item.first
        value.key_token = key_read.scalar.first if isinstance(key_read, Read) and key_read.scalar else item.first
        entries = msg.fields.setdefault(f.name, {})
        if key in entries:
            earlier = entries[key]
            token = earlier.opener if isinstance(earlier, Msg) else (earlier.scalar.first if earlier.scalar else 0)
            self.overwrites.append(Overwrite("map-key", msg.schema.name, f.name, token or 0, name_token, key))
        entries[key] = value


def paths(msg: Msg, prefix: str = "") -> Iterator[tuple[str, FieldSchema, Value]]:
    """Every value TAO reads, depth first, with its dotted path (`a.b[0].c`, maps as `m[key]`)."""
    for name, value in msg.fields.items():
        f = msg.schema.fields[name]
        path = prefix + name
        if isinstance(value, list):
            items: list[tuple[str, Value]] = [(f"{path}[{i}]", v) for i, v in enumerate(value)]
        elif isinstance(value, dict):
            items = [(f"{path}[{k}]", v) for k, v in value.items()]
        else:
            items = [(path, value)]
        for item_path, item in items:
            yield item_path, f, item
            if isinstance(item, Msg):
                yield from paths(item, item_path + ".")
