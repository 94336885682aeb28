"""Our schema (tasks/spec/schema.json) against NVIDIA's own message definitions, field by field.

The two descriptors TAO parses specs into (`Experiment` for train, `DatasetExportConfig` for
dataset_convert) are walked together with our schema from the roots. Every message reached must
pair with exactly one of ours (NVIDIA nests some, `AugmentationConfig.Preprocessing`; ours are flat,
`Preprocessing`), with the same field names, scalar types, labels (optional/repeated/map, map key
types), oneof groups and enum values (names in number order, numbered from 0).
"""

from __future__ import annotations

from tasks.spec.schema import load_schema
from tests.spec.tao_protos import tao_modules

_SCALARS = {1: "double", 2: "float", 3: "int64", 4: "uint64", 5: "int32", 8: "bool", 9: "string", 13: "uint32"}


def _is_repeated(fd) -> bool:
    return fd.is_repeated if hasattr(fd, "is_repeated") else fd.label == fd.LABEL_REPEATED


def _field_shape(fd) -> tuple[str, str | None, str]:
    """(label, map key type, value kind) of a descriptor field; kind is a scalar type, 'enum:N' or 'message'."""
    message = fd.message_type
    if message is not None and message.GetOptions().map_entry:
        key, value = message.fields_by_name["key"], message.fields_by_name["value"]
        return "map", _SCALARS[key.type], _kind(value)
    return ("repeated" if _is_repeated(fd) else "optional"), None, _kind(fd)


def _kind(fd) -> str:
    if fd.message_type is not None:
        return "message"
    if fd.enum_type is not None:
        return "enum"
    return _SCALARS[fd.type]


def _compare(descriptor, ours: str, schema, pairs: dict, problems: list) -> None:
    if descriptor.full_name in pairs:
        if pairs[descriptor.full_name] != ours:
            problems.append(f"{descriptor.full_name} pairs with both {pairs[descriptor.full_name]} and {ours}")
        return
    pairs[descriptor.full_name] = ours
    msg = schema.messages.get(ours)
    if msg is None:
        problems.append(f"{descriptor.full_name}: our schema has no message {ours}")
        return
    names, our_names = [f.name for f in descriptor.fields], list(msg.fields)
    if sorted(names) != sorted(our_names):
        problems.append(f"{descriptor.full_name} vs {ours}: fields {sorted(set(names) ^ set(our_names))} differ")
    theirs_oneofs = {o.name: sorted(f.name for f in o.fields) for o in descriptor.oneofs}
    ours_oneofs = {k: sorted(v) for k, v in msg.oneofs.items()}
    if theirs_oneofs != ours_oneofs:
        problems.append(f"{descriptor.full_name} vs {ours}: oneofs {theirs_oneofs} != {ours_oneofs}")
    for fd in descriptor.fields:
        f = msg.fields.get(fd.name)
        if f is None:
            continue
        label, key, kind = _field_shape(fd)
        where = f"{descriptor.full_name}.{fd.name}"
        if (label, key) != (f.label, f.key if f.label == "map" else None):
            problems.append(f"{where}: label {label}/{key} vs ours {f.label}/{f.key}")
        target = fd.message_type.fields_by_name["value"] if label == "map" else fd
        if kind == "message":
            if f.type not in schema.messages:
                problems.append(f"{where}: a message ({target.message_type.full_name}), ours is {f.type}")
            else:
                _compare(target.message_type, f.type, schema, pairs, problems)
        elif kind == "enum":
            values = sorted(target.enum_type.values, key=lambda v: v.number)
            if [v.number for v in values] != list(range(len(values))):
                problems.append(f"{where}: enum numbers {[v.number for v in values]} are not 0..n-1")
            if tuple(v.name for v in values) != schema.enums.get(f.type):
                problems.append(f"{where}: enum {[v.name for v in values]} vs ours {schema.enums.get(f.type)}")
        elif kind != f.type:
            problems.append(f"{where}: type {kind} vs ours {f.type}")


def test_schema_equals_nvidia_descriptors(capsys):
    mods = tao_modules()
    schema = load_schema()
    pairs: dict[str, str] = {}
    problems: list[str] = []
    _compare(mods.experiment_pb2.Experiment.DESCRIPTOR, schema.roots["train"], schema, pairs, problems)
    _compare(mods.dataset_export_config_pb2.DatasetExportConfig.DESCRIPTOR, schema.roots["dataset_convert"],
             schema, pairs, problems)
    assert problems == []
    # One-to-one: every message of ours is reached, none twice.
    assert sorted(pairs.values()) == sorted(schema.messages), set(schema.messages) ^ set(pairs.values())
    used_enums = {f.type for m in schema.messages.values() for f in m.fields.values() if f.type in schema.enums}
    assert used_enums == set(schema.enums)
    with capsys.disabled():
        print(f"\nschema vs NVIDIA descriptors: {len(pairs)} messages, "
              f"{sum(len(m.fields) for m in schema.messages.values())} fields, {len(schema.enums)} enums, 0 differences")


def test_pinned_protos_are_the_tao5_field_list():
    """The pinned nvidia-tao-deploy wheel carries TAO 5's detectnet_v2 schema (the TAO 5 field lists in
    ../shared/reference/detectnet_v2-*-spec-fields.txt), not a newer or older one."""
    from tests.spec._specs import SPECS

    mods = tao_modules()
    for root, name in ((mods.experiment_pb2.Experiment, "detectnet_v2-experiment-spec-fields.txt"),
                       (mods.dataset_export_config_pb2.DatasetExportConfig, "detectnet_v2-dataset-export-spec-fields.txt")):
        listed = {line.split(":", 1)[0].replace("[*]", "") for line in (SPECS.parent / name).read_text().splitlines()
                  if line.strip()}
        assert listed and set(_dotted(root.DESCRIPTOR)) == listed


def _dotted(descriptor, prefix: str = "", seen: tuple = ()) -> list[str]:
    out = []
    for fd in descriptor.fields:
        path = prefix + fd.name
        out.append(path)
        message = fd.message_type
        if message is not None and message.GetOptions().map_entry:
            message = message.fields_by_name["value"].message_type
        if message is not None and message.full_name not in seen:
            out += _dotted(message, path + ".", seen + (descriptor.full_name,))
    return out
