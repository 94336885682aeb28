"""Schema and TAO-validator checks of a parsed spec: every problem at once, each with line:col.

Three layers, all reported together:
1. structure: unknown fields (with "did you mean"), wrong types, bad enum names, duplicate
   singular fields, two members of one oneof, lists/blocks where they do not belong;
2. TAO 5's own `train` spec validator (required messages, value rules by field name, applied
   to every message present, with unset scalars reading as 0 or "");
3. what TAO rejects at run time from the spec alone (no validation data, logging periods;
   the KITTI converter's partition rules for dataset_convert specs).
"""

from __future__ import annotations

import difflib
from typing import Any

from tasks.errors import Problem, SpecError
from tasks.spec.schema import BadValue, MessageSchema, Schema, coerce, default_value, index, load_schema
from tasks.spec.syntax import Document, FieldNode, ListValue, MessageNode, Scalar


def check_document(doc: Document, schema: Schema | None = None) -> list[Problem]:
    """All problems of `doc` (errors and warnings), in file order."""
    checker = _Checker(doc, schema or load_schema())
    checker.message(doc.root, checker.schema.root(doc.kind), None)
    if doc.kind == "train":
        checker.train_runtime()
    else:
        checker.convert_rules()
    return sorted(checker.problems, key=lambda p: (p.line or 0, p.column or 0))


def require_valid(doc: Document, schema: Schema | None = None) -> list[Problem]:
    """Raise one `SpecError` listing every error; return the warnings when there is none."""
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


class _Checker:
    def __init__(self, doc: Document, schema: Schema) -> None:
        self.doc = doc
        self.schema = schema
        self.problems: list[Problem] = []

    def add(self, code: str, message: str, token: int | None, hint: str | None = None, severity: str = "error") -> None:
        line, column = self.doc.where(token) if token is not None else (1, 1)
        self.problems.append(Problem(code, message, severity, self.doc.file, line, column, hint))  # type: ignore[arg-type]

    # --- structure -----------------------------------------------------------------------

    def message(self, node: MessageNode, msg: MessageSchema, opener: int | None) -> None:
        seen: dict[str, FieldNode] = {}
        last: dict[str, FieldNode] = {}
        oneof_seen: dict[str, FieldNode] = {}
        for fnode in node.fields:
            f = msg.fields.get(fnode.name)
            if f is None:
                self.unknown(fnode, msg)
                continue
            if not f.repeated and fnode.name in seen:
                first = seen[fnode.name]
                self.add(
                    "duplicate-field",
                    f"{fnode.name} is set twice in {msg.name} (first at line {self.doc.where(first.name_token)[0]})",
                    fnode.name_token,
                    "keep one; TAO would silently use the last value",
                )
            if f.oneof:
                other = oneof_seen.get(f.oneof)
                if other is not None and other.name != fnode.name:
                    self.add(
                        "oneof-conflict",
                        f"{fnode.name} and {other.name} (line {self.doc.where(other.name_token)[0]}) are both set, "
                        f"but only one of {', '.join(msg.oneofs[f.oneof])} may be",
                        fnode.name_token,
                        f"remove one of them ({f.oneof})",
                    )
                oneof_seen.setdefault(f.oneof, fnode)
            seen.setdefault(fnode.name, fnode)
            last[fnode.name] = fnode
            self.field_value(fnode, f, msg)
        if self.doc.kind == "train":
            self.validator_rules(msg, last, opener)

    def field_value(self, fnode: FieldNode, f, msg: MessageSchema) -> None:
        items: list[Any] = [fnode.value]
        if isinstance(fnode.value, ListValue):
            items = fnode.value.items
            if not f.repeated:
                self.add("not-repeated", f"{f.name} takes one value, not a list", fnode.value.first, f"write `{f.name}: value`")
                return
        wants_block = f.label == "map" or self.schema.is_message(f)
        for item in items:
            if wants_block and not isinstance(item, MessageNode):
                self.add("wrong-type", f"{f.name} is a block ({f.type}), not a value", item.first, f"write `{f.name} {{ ... }}`")
            elif not wants_block and isinstance(item, MessageNode):
                self.add("wrong-type", f"{f.name} is a value ({f.type}), not a block", item.first, f"write `{f.name}: value`")
            elif isinstance(item, MessageNode):
                sub = self.schema.map_entry(f) if f.label == "map" else self.schema.messages[f.type]
                self.message(item, sub, item.first)
            else:
                self.scalar(item, f)

    def scalar(self, item: Scalar, f) -> None:
        try:
            coerce(item, f, self.schema)
        except BadValue as exc:
            hint = None
            if self.schema.is_enum(f):
                close = difflib.get_close_matches(str(item.value).upper(), self.schema.enums[f.type], n=1, cutoff=0.5)
                hint = f"did you mean {close[0]}?" if close else f"use one of {', '.join(self.schema.enums[f.type])}"
                self.add("bad-enum", str(exc), item.first, hint)
                return
            if f.type in ("int32", "uint32", "int64", "uint64") and item.kind == "number" and not item.is_int:
                hint = f"write a whole number; TAO 5 reads {f.name} as {f.type} (older TLT specs wrote a fraction here)"
            self.add("wrong-type", str(exc), item.first, hint)

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

    # --- TAO 5's train validator ----------------------------------------------------------

    def validator_rules(self, msg: MessageSchema, last: dict[str, FieldNode], opener: int | None) -> None:
        where = f"in {msg.name}" + (f" (block at line {self.doc.where(opener)[0]})" if opener is not None else "")
        for name in self.schema.required.get(msg.name, ()):
            if name not in last:
                self.add(
                    "missing-required",
                    f"{name} is required {where}; TAO 5's validator rejects the spec without it",
                    opener,
                    f"add `{name} {{ ... }}`" if self.schema.is_message(msg.fields[name]) else f"add at least one {name}",
                )
        for name, f in msg.fields.items():
            rule = self.schema.value_rules.get(name)
            if rule is None or f.repeated or self.schema.is_message(f):
                continue
            fnode = last.get(name)
            if fnode is None:
                value, token, written = default_value(f, self.schema), opener, False
            elif isinstance(fnode.value, Scalar):
                try:
                    value = coerce(fnode.value, f, self.schema)
                except BadValue:
                    continue  # already reported as a type error
                token, written = fnode.value.first, True
            else:
                continue
            failure = _rule_failure(value, rule)
            if failure:
                shown = f"{name} is {value!r}" if written else f"{name} is not set (TAO reads {value!r}) {where}"
                self.add("invalid-value", f"{shown}; TAO 5 requires it {failure}", token, _rule_hint(name, rule))

    # --- run-time rules ---------------------------------------------------------------------

    def train_runtime(self) -> None:
        at = index(self.doc, self.schema)
        ds = at.get("dataset_config")
        if ds is not None and "dataset_config.validation_fold" not in at and "dataset_config.validation_data_source" not in at:
            self.add(
                "no-validation-data",
                "dataset_config has neither validation_fold nor validation_data_source; TAO 5 validates every "
                "validation_period_during_training epochs and stops with 'no validation data found'",
                ds.node.name_token,
                "add `validation_fold: 0` (with fold TFRecords) or a validation_data_source block",
            )
        vis = "training_config.visualizer"
        enabled, freq = at.get(f"{vis}.enabled"), at.get(f"{vis}.infrequent_logging_frequency")
        epochs = at.get("training_config.num_epochs")
        if enabled and freq and epochs and _typed(enabled, self.schema) is True:
            f, n = _typed(freq, self.schema), _typed(epochs, self.schema)
            if isinstance(f, int) and isinstance(n, int) and f > n > 0:
                self.add(
                    "logging-period",
                    f"visualizer.infrequent_logging_frequency {f} is more than num_epochs {n}; TAO 5 stops at start-up",
                    freq.value.first,
                    f"set infrequent_logging_frequency to at most {n}, or disable the visualizer",
                )

    def convert_rules(self) -> None:
        at = index(self.doc, self.schema)
        if "kitti_config" not in at and "coco_config" not in at:
            self.add("missing-required", "a dataset_convert spec needs a kitti_config (or coco_config) block", None, "add `kitti_config { ... }`")
            return
        if "kitti_config" not in at:
            return
        get = {p.split(".", 1)[1]: b for p, b in at.items() if p.startswith("kitti_config.")}
        opener = at["kitti_config"].value.first
        mode = _typed(get["partition_mode"], self.schema) if "partition_mode" in get else ""
        token = get["partition_mode"].value.first if "partition_mode" in get else opener
        if mode not in ("random", "sequence"):
            self.add(
                "invalid-value",
                f"kitti_config.partition_mode is {mode!r}; the KITTI converter knows \"random\" and \"sequence\"",
                token,
                'set partition_mode: "random" (with num_partitions: 2 and val_split)',
                "error" if mode else "warning",
            )
        if mode == "random":
            parts = _typed(get["num_partitions"], self.schema) if "num_partitions" in get else 0
            if parts != 2:
                self.add(
                    "invalid-value",
                    f"random partitioning needs num_partitions: 2 (validation + training), got {parts}",
                    get["num_partitions"].value.first if "num_partitions" in get else opener,
                    "set num_partitions: 2",
                )
            split = _typed(get["val_split"], self.schema) if "val_split" in get else 0.0
            if isinstance(split, float) and not 0 <= split < 100:
                self.add("invalid-value", f"val_split is a percentage in [0, 100), got {split}", get["val_split"].value.first, "e.g. val_split: 20")
        if mode == "sequence" and not _typed_or(get.get("kitti_sequence_to_frames_file"), self.schema, ""):
            self.add(
                "missing-required",
                "sequence partitioning needs kitti_sequence_to_frames_file",
                token,
                "add the JSON file mapping sequences to frames, relative to root_directory_path",
            )
        ext = _typed_or(get.get("image_extension"), self.schema, ".png")
        if isinstance(ext, str) and ext and not ext.startswith("."):
            self.add(
                "extension-dot",
                f"kitti_config.image_extension {ext!r} has no leading dot; the converter matches file-name endings",
                get["image_extension"].value.first,
                f'write image_extension: ".{ext}"',
                "warning",
            )


def _typed(bound, schema: Schema) -> Any:
    try:
        return coerce(bound.value, bound.schema, schema) if isinstance(bound.value, Scalar) else None
    except BadValue:
        return None


def _typed_or(bound, schema: Schema, default: Any) -> Any:
    if bound is None:
        return default
    value = _typed(bound, schema)
    return default if value is None else value


def _rule_failure(value: Any, rule: dict[str, Any]) -> str | None:
    if rule.get("non_empty") and value == "":
        return "to be non-empty"
    if "one_of" in rule and value != "" and value not in rule["one_of"]:
        return f"to be one of {', '.join(rule['one_of'])}"
    if isinstance(value, str):
        return None
    if "gt" in rule and not value > rule["gt"]:
        return f"> {rule['gt']}"
    if "ge" in rule and not value >= rule["ge"]:
        return f">= {rule['ge']}"
    if "lt" in rule and not value < rule["lt"]:
        return f"< {rule['lt']}"
    if "le" in rule and not value <= rule["le"]:
        return f"<= {rule['le']}"
    if "multiple_of" in rule and value % rule["multiple_of"]:
        return f"to be a multiple of {rule['multiple_of']}"
    return None


def _rule_hint(name: str, rule: dict[str, Any]) -> str:
    if "multiple_of" in rule:
        return f"use a multiple of {rule['multiple_of']} (the network downsamples by 16); resize images to match"
    if "one_of" in rule:
        return f"the backbone family, e.g. arch: \"resnet\" (with num_layers: 18); allowed: {', '.join(rule['one_of'])}"
    if rule.get("non_empty"):
        return f"give {name} a value"
    bounds = [f"{op} {rule[key]}" for key, op in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")) if key in rule]
    return f"set {name} to a value {' and '.join(bounds)}"
