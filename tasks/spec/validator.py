"""TAO 5's spec validator and run-time rules, applied to what TAO reads from the spec.

`train` runs `spec_validator.py` over the parsed message before anything else: required
messages (non-empty when repeated or a map) and value rules by field *name* on every scalar of
every message it reaches, unset scalars reading as 0 or "". It then refuses at run time what
only the spec decides (no validation data, a visualizer period longer than the run, an image
extension written with its dot). `dataset_convert` refuses a KITTI block without `partition_mode`
or with an extension without its dot. All rules see the merged message (`tasks.spec.reading`),
so a block written twice is judged as TAO judges it: once, merged.
"""

from __future__ import annotations

from typing import Any

from tasks.errors import Problem
from tasks.spec.reading import Msg, Read, Reading
from tasks.spec.schema import Schema, default_value
from tasks.spec.syntax import Document


def validate_reading(doc: Document, reading: Reading, schema: Schema) -> list[Problem]:
    """Validator and run-time problems of what TAO reads from `doc`."""
    rules = _Rules(doc, schema)
    if doc.kind == "train":
        rules.message(reading.root, schema.required_root)
        rules.train_runtime(reading.root)
    else:
        rules.convert(reading.root)
    return rules.problems


class Findings:
    """The problems one pass over a spec collects, each at its token."""

    def __init__(self, doc: Document, schema: Schema) -> None:
        self.doc = doc
        self.schema = schema
        self.problems: list[Problem] = []

    def add(self, code: str, message: str, token: int | None, hint: str | None = None, severity: str = "error") -> None:
        self.problems.append(self.doc.problem(code, message, token, hint, severity))


class _Rules(Findings):

    # --- TAO's spec_validator ------------------------------------------------------------

    def message(self, msg: Msg, required: tuple[str, ...]) -> None:
        """One message, as `spec_validator` walks it: fields in declaration order, children first-found."""
        where = f"in {msg.schema.name}" + (f" (block at line {self.doc.where(msg.opener)[0]})" if msg.opener else "")
        for name, f in msg.schema.fields.items():
            value = msg.fields.get(name)
            if f.label == "map" or self.schema.is_message(f):
                if name in required and not value:
                    self.add("missing-required", f"{name} is required {where}; TAO 5's validator rejects the spec "
                             "without it (\"should be set in experiment spec file\")", msg.opener,
                             f"add `{name} {{ ... }}`" if not f.repeated else f"add at least one {name}")
                nested = self.schema.required.get(name, ())
                if isinstance(value, Msg):
                    self.message(value, nested)
                elif isinstance(value, (list, dict)):
                    for item in value.values() if isinstance(value, dict) else value:
                        if isinstance(item, Msg):
                            self.message(item, nested)
                continue
            rule = self.schema.value_rules.get(name)
            if rule is None:
                continue
            if f.repeated:
                for read in value or []:
                    self.value(name, read, rule, where, msg)
            elif isinstance(value, Read):
                self.value(name, value, rule, where, msg)
            elif not _written_unreadable(msg, name):
                self.value(name, Read(default_value(f, self.schema)), rule, where, msg)

    def value(self, name: str, read: Read, rule: dict[str, Any], where: str, msg: Msg) -> None:
        failure = _rule_failure(read.value, rule)
        if not failure:
            return
        if read.scalar is not None:
            shown, token = f"{name} is {read.value!r}", read.scalar.first
        else:
            shown, token = f"{name} is not set (TAO reads {read.value!r}) {where}", msg.opener
        self.add("invalid-value", f"{shown}; TAO 5 requires it {failure}", token, _rule_hint(name, rule))

    # --- what train refuses at run time ----------------------------------------------------

    def train_runtime(self, root: Msg) -> None:
        ds = root.sub("dataset_config")
        if ds is not None and "validation_fold" not in ds.fields and "validation_data_source" not in ds.fields:
            self.add(
                "no-validation-data",
                "dataset_config has neither validation_fold nor validation_data_source; TAO 5 validates every "
                "validation_period_during_training epochs and stops with 'no validation data found'",
                ds.opener,
                "add `validation_fold: 0` (with fold TFRecords) or a validation_data_source block",
            )
        if ds is not None and isinstance(ds.fields.get("image_extension"), Read):
            ext = ds.fields["image_extension"]
            if str(ext.value).startswith("."):
                self.add("extension-dot", f"dataset_config.image_extension {ext.value!r} starts with a dot; TAO "
                         f"builds image paths as <frame>.{ext.value} and fails at the first batch",
                         ext.scalar.first if ext.scalar else ds.opener, f'write image_extension: "{ext.value[1:]}"')
        training = root.sub("training_config")
        vis = training.sub("visualizer") if training else None
        if training and vis and vis.get("enabled") is True:
            freq, epochs = vis.fields.get("infrequent_logging_frequency"), training.get("num_epochs", 0)
            if isinstance(freq, Read) and isinstance(epochs, int) and freq.value > epochs > 0:
                self.add(
                    "logging-period",
                    f"visualizer.infrequent_logging_frequency {freq.value} is more than num_epochs {epochs}; "
                    "TAO 5 stops at start-up",
                    freq.scalar.first if freq.scalar else vis.opener,
                    f"set infrequent_logging_frequency to at most {epochs}, or disable the visualizer",
                )

    # --- what dataset_convert refuses ------------------------------------------------------

    def convert(self, root: Msg) -> None:
        if "kitti_config" not in root.fields and "coco_config" not in root.fields:
            self.add("missing-required", "a dataset_convert spec needs a kitti_config (or coco_config) block", None,
                     "add `kitti_config { ... }`")
            return
        kitti = root.sub("kitti_config")
        if kitti is None:
            return

        def token(name: str) -> int | None:
            read = kitti.fields.get(name)
            return read.scalar.first if isinstance(read, Read) and read.scalar else kitti.opener

        mode = kitti.get("partition_mode", "")
        if mode not in ("random", "sequence"):
            shown = f"is {mode!r}" if mode else "is not set"
            self.add("invalid-value", f"kitti_config.partition_mode {shown}; the KITTI converter knows \"random\" "
                     "and \"sequence\" and stops with 'Unknown partition mode'", token("partition_mode"),
                     'set partition_mode: "random" (with num_partitions: 2 and val_split)')
        if mode == "random":
            parts = kitti.get("num_partitions", 0)
            if parts != 2:
                self.add("invalid-value", f"random partitioning needs num_partitions: 2 (validation + training), "
                         f"got {parts}", token("num_partitions"), "set num_partitions: 2")
            split = kitti.get("val_split", 0.0)
            if not 0 <= split < 100:
                self.add("invalid-value", f"val_split is a percentage in [0, 100), got {split}", token("val_split"),
                         "e.g. val_split: 20")
        if mode == "sequence" and not kitti.get("kitti_sequence_to_frames_file", ""):
            self.add("missing-required", "sequence partitioning needs kitti_sequence_to_frames_file",
                     token("partition_mode"), "add the JSON file mapping sequences to frames, relative to "
                     "root_directory_path")
        ext = kitti.get("image_extension")
        if isinstance(ext, str) and ext and not ext.startswith("."):
            self.add("extension-dot", f"kitti_config.image_extension {ext!r} has no leading dot; the converter "
                     f"lists files ending in {ext!r} and then opens <frame>{ext}, which does not exist",
                     token("image_extension"), f'write image_extension: ".{ext}"')


def _written_unreadable(msg: Msg, name: str) -> bool:
    """The field is in the text but its value was refused (already a type error): no second problem."""
    return name in msg.written


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
