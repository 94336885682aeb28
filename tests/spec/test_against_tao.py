"""The spec engine against NVIDIA's own parser, on seeded mutants of the real specs.

Every mutant (tests/spec/mutants.py: 20 families of mistakes, >= 3,000 in all) goes through
`text_format.Merge` into NVIDIA's `_pb2` messages as TAO reads a spec file, through protobuf 3.20.3
(TAO's TF1 containers) in a child process, and through our parser + schema check. Asserted, and
printed:
- schema-level verdict: where both protobuf lines agree, we refuse exactly what they refuse; where
  they disagree, we refuse nothing and warn (`protobuf-version`); no version warning where they agree;
- what we say more than TAO is a warning: a duplicated value, block, map key, or two oneof members;
- facts: what `extract_facts` reports equals what TAO's message holds;
- rewrites: the rewritten spec, read by TAO, differs from the original's reading only in the rebased
  paths and num_epochs (or the rewrite refuses a reference that matches no path TAO reads).
"""

from __future__ import annotations

import math
import os
from collections import Counter

from tasks.errors import SpecError
from tasks.spec import check_spec, extract_facts, parse_spec, rebase_path, rewrite_spec
from tasks.spec.check import STRUCTURE_CODES
from tasks.spec.schema import load_schema
from tests.spec._specs import ALL, kind_of, spec_text
from tests.spec.mutants import FAMILIES, bare_cr_cases, mutants
from tests.spec.tao_protos import OldProtobuf, message_class, tao_read

N_MUTANTS = int(os.environ.get("TAOFLOW_SPEC_MUTANTS", "3200"))
SEED = int(os.environ.get("TAOFLOW_SPEC_MUTANT_SEED", "20261130"))
EPOCHS = 7
_EXPECTED_WARNING = {"dup-scalar": {"duplicate-field", "duplicate-key"},
                     "dup-block": {"duplicate-block", "duplicate-field", "duplicate-key"},
                     "oneof": {"oneof-conflict", "duplicate-field", "duplicate-block"}}
_PATH_FIELDS = {f.name for m in load_schema().messages.values() for f in m.fields.values() if f.path}


def _rebasings(name: str) -> dict[str, str]:
    """What the flow would pass for this real spec: each data/model folder onto a mount."""
    facts = extract_facts(parse_spec(spec_text(name), name, kind_of(name)))
    folders = sorted({os.path.dirname(p.value.rstrip("/*")) if p.field.endswith(("tfrecords_path", "model_file"))
                      else p.value.rstrip("/") for p in facts.path_fields if p.value.startswith("/")})
    return {folder: f"/mnt/slot{i}" for i, folder in enumerate(folders)}


def test_spec_engine_agrees_with_tao_on_mutants(capsys):
    cases = mutants(N_MUTANTS, SEED)
    assert len(cases) >= 3000 or N_MUTANTS < 3000
    per_family = Counter(m.family for m in cases)
    counts, examples = _run(cases, shown=4000)
    summary = ", ".join(f"{k}: {counts[k]}" for k in ("tao accepts", "tao refuses", "protobuf versions differ",
                                                        "facts compared", "rewrites compared", "rewrites refused",
                                                        "oneof conflicts warned"))
    with capsys.disabled():  # the counts show in every run, not only on failure
        print(f"\n{len(cases)} mutants ({len(per_family)} families, {min(per_family.values())}+ each): {summary}; "
              f"{counts['schema disagreements']} disagreements at schema level, {counts['facts mismatches']} facts "
              f"mismatches, {counts['rewrite mismatches']} rewrite mismatches, {counts['missing warnings']} missing "
              f"warnings, {counts['spurious version warnings']} spurious version warnings")
    assert set(per_family) == set(FAMILIES)
    _assert_none(counts, examples)
    if N_MUTANTS >= 3000:
        assert counts["tao accepts"] > 500 and counts["tao refuses"] > 500 and counts["protobuf versions differ"] > 20
        assert counts["oneof conflicts warned"] > 20


def test_bare_carriage_returns_read_as_tao_reads_them(capsys):
    """A CR in every place it can meet a spec (tests/spec/mutants.py `bare_cr_cases`: CR-only and CRLF
    files, a lone CR in a CRLF file, LF+CR, a CR after a comment -- `objectives { # c<CR> name: ...` --,
    inside a string, between a sign and its number, ...) on every real spec: TAO's reading (open() with
    universal newlines, then Merge; both protobuf lines) and ours agree on the verdict, the facts and the
    rewrite, and every finding and recorded line is where it is with LF line ends (the text Merge sees)."""
    cases = bare_cr_cases()
    counts, examples = _run(cases, shown=600, locate=True)
    mismatches = sum(counts[k] for k in ("schema disagreements", "facts mismatches", "rewrite mismatches",
                                         "misplaced errors"))
    with capsys.disabled():
        print(f"\n{len(cases)} bare-CR cases ({len({m.family for m in cases})} kinds): tao accepts: "
              f"{counts['tao accepts']}, tao refuses: {counts['tao refuses']}, facts compared: "
              f"{counts['facts compared']}, rewrites compared: {counts['rewrites compared']}, findings located: "
              f"{counts['findings located']}; {mismatches} mismatches")
    assert counts["tao accepts"] > 50 and counts["tao refuses"] > 20 and counts["findings located"] > 20
    _assert_none(counts, examples)


def _run(cases, *, shown: int, locate: bool = False) -> tuple[Counter, dict[str, list[str]]]:
    """Every case through TAO (both protobuf lines) and through us: the counts, and examples of each failure."""
    old = OldProtobuf().read_all([(m.data, m.kind) for m in cases])
    rebasings = {name: _rebasings(name) for name in ALL}
    counts: Counter = Counter()
    examples: dict[str, list[str]] = {}

    def fail(what: str, m, detail: str) -> None:
        counts[what] += 1
        examples.setdefault(what, []).append(f"{m.family} {m.spec}: {detail}\n{m.data[:shown]!r}")

    for m, old_result in zip(cases, old):
        _judge(m, tao_read(m.data, m.kind), old_result, rebasings[m.spec], counts, fail, locate=locate)
    return counts, examples


def _assert_none(counts: Counter, examples: dict[str, list[str]]) -> None:
    bad = {k: examples[k][:3] for k in examples}
    assert not bad, "\n\n".join(f"{k} ({counts[k]}):\n" + "\n---\n".join(v) for k, v in bad.items())


def _judge(m, new, old_result, rebasings, counts: Counter, fail, *, locate: bool = False) -> None:
    """One spec through TAO (current protobuf and 3.20) and through us: verdicts, warnings, facts, rewrite;
    with `locate` (cases with one mistake), the line TAO stops at is a line we name."""
    versions_agree = (new.ok == old_result.ok) and (not new.ok or _same_reading(new.message, _parsed(old_result, m.kind)))
    counts["tao accepts" if new.ok else "tao refuses"] += 1
    counts["protobuf versions differ"] += not versions_agree
    try:
        doc = parse_spec(m.data, m.spec, m.kind)
        problems = check_spec(doc)
    except SpecError as exc:
        doc, problems = None, list(exc.problems)
    ours_error = doc is None or any(p.severity == "error" and p.code in STRUCTURE_CODES for p in problems)
    codes = {p.code for p in problems}
    if versions_agree:
        if ours_error != (not new.ok):
            fail("schema disagreements", m, f"TAO {'refuses: ' + str(new.error) if not new.ok else 'accepts'}, "
                 f"we {'refuse' if ours_error else 'accept'}: {[p.render() for p in problems][:4]}")
        elif new.ok and "protobuf-version" in codes:
            fail("spurious version warnings", m, str([p.render() for p in problems if p.code == "protobuf-version"]))
    elif ours_error or "protobuf-version" not in codes:
        fail("schema disagreements", m, f"protobuf versions differ (current: {new.error or 'ok'}, 3.20: "
             f"{old_result.error or 'ok'}), we {'refuse' if ours_error else 'do not warn'}: "
             f"{[p.render() for p in problems][:4]}")
    if new.ok and m.family in _EXPECTED_WARNING and doc is not None and not codes & _EXPECTED_WARNING[m.family]:
        fail("missing warnings", m, str([p.render() for p in problems][:4]))
    counts["oneof conflicts warned"] += "oneof-conflict" in codes
    if locate:
        _check_lines(m, doc, problems, counts, fail)
    if ours_error or not new.ok or doc is None:
        return
    counts["facts compared"] += 1
    ours, theirs = _our_facts(doc), _tao_facts(new.message, m.kind)
    if not _equal(ours, theirs):
        diff = {k: (ours[k], theirs[k]) for k in theirs if not _equal(ours[k], theirs[k])}
        fail("facts mismatches", m, str(diff))
    _check_rewrite(m, doc, new, rebasings, counts, fail)


def _check_lines(m, doc, problems, counts: Counter, fail) -> None:
    """Line ends do not move anything: every finding, and every line the facts hold, is where it is in
    the text TAO's open() hands to Merge (\r\n and \r turned into \n)."""
    twin = m.data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    try:
        twin_doc = parse_spec(twin, m.spec, m.kind)
        twin_problems = check_spec(twin_doc)
    except SpecError as exc:
        twin_doc, twin_problems = None, list(exc.problems)
    where = sorted((p.code, p.line, p.column) for p in problems)
    if where != sorted((p.code, p.line, p.column) for p in twin_problems):
        fail("misplaced errors", m, f"we say {[p.render() for p in problems][:4]}, on the same text with LF "
             f"line ends {[p.render() for p in twin_problems][:4]}")
    elif (doc is None) != (twin_doc is None) or (doc is not None and extract_facts(doc) != extract_facts(twin_doc)):
        fail("misplaced errors", m, "the facts (or the lines they record) differ from the same text with LF line ends")
    counts["findings located"] += len(problems)


def _same_reading(a, b) -> bool:
    """Equal messages, -0.0 and 0.0 alike (protobuf 3.20 drops a -0.0 it reads; TAO uses both as 0)."""
    return _canonical(a) == _canonical(b)


def _canonical(message):
    copy = type(message)()
    copy.CopyFrom(message)
    _zero_signs(copy)
    return copy


def _zero_signs(message) -> None:
    for fd, value in message.ListFields():
        if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
            values = fd.message_type.fields_by_name["value"]
            for key in list(value):
                if values.message_type is not None:
                    _zero_signs(value[key])
                elif values.type in (fd.TYPE_FLOAT, fd.TYPE_DOUBLE) and value[key] == 0:
                    value[key] = 0.0
        elif fd.message_type is not None:
            for item in (value if _repeated(fd) else [value]):
                _zero_signs(item)
        elif fd.type in (fd.TYPE_FLOAT, fd.TYPE_DOUBLE):
            if _repeated(fd):
                value[:] = [0.0 if v == 0 else v for v in value]
            elif value == 0:
                setattr(message, fd.name, 0.0)


def _parsed(result, kind: str):
    message = message_class(kind)()
    message.ParseFromString(result.serialized)
    return message


def _check_rewrite(m, doc, new, rebasings, counts, fail) -> None:
    read_paths = [v for _, v in _tao_paths(new.message) if v]
    used = {ref for ref in rebasings for v in read_paths if rebase_path(v, {ref: rebasings[ref]})}
    epochs = EPOCHS if m.kind == "train" else None
    try:
        result = rewrite_spec(doc, rebasings, epochs)
    except SpecError as exc:
        counts["rewrites refused"] += 1
        if used == set(rebasings) or not any(p.code == "unmatched-reference" for p in exc.problems):
            fail("rewrite mismatches", m, f"refused: {exc}")
        return
    if used != set(rebasings):
        fail("rewrite mismatches", m, f"accepted references {sorted(set(rebasings) - used)} that match no path TAO reads")
        return
    counts["rewrites compared"] += 1
    after = tao_read(result.text.encode("utf-8"), m.kind)
    if not after.ok:
        fail("rewrite mismatches", m, f"TAO refuses the rewritten spec: {after.error}")
        return
    expected = message_class(m.kind)()
    expected.CopyFrom(new.message)
    _rebase_message(expected, rebasings)
    if epochs is not None:
        expected.training_config.num_epochs = epochs
    if after.message != expected:
        fail("rewrite mismatches", m, f"TAO reads\n{after.message}\nexpected\n{expected}")


def _rebase_message(message, rebasings) -> None:
    for fd in message.DESCRIPTOR.fields:
        value = getattr(message, fd.name)
        if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
            if fd.message_type.fields_by_name["value"].message_type is not None:
                for item in value.values():
                    _rebase_message(item, rebasings)
        elif fd.message_type is not None:
            if _repeated(fd):
                for item in value:
                    _rebase_message(item, rebasings)
            elif message.HasField(fd.name):
                _rebase_message(value, rebasings)
        elif fd.name in _PATH_FIELDS:
            if _repeated(fd):
                value[:] = [_rebased(v, rebasings) for v in value]
            elif value:
                setattr(message, fd.name, _rebased(value, rebasings))


def _rebased(value: str, rebasings) -> str:
    hit = rebase_path(value, rebasings)
    return hit[0] if hit else value


def _repeated(fd) -> bool:
    return fd.is_repeated if hasattr(fd, "is_repeated") else fd.label == fd.LABEL_REPEATED


def _tao_paths(message, prefix: str = "") -> list[tuple[str, str]]:
    """(dotted path, value) of every path-typed string TAO reads, in our PathField notation."""
    out: list[tuple[str, str]] = []
    for fd in message.DESCRIPTOR.fields:
        value = getattr(message, fd.name)
        path = prefix + fd.name
        if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
            if fd.message_type.fields_by_name["value"].message_type is not None:
                for key in value:
                    out += _tao_paths(value[key], f"{path}[{key}].")
        elif fd.message_type is not None:
            if _repeated(fd):
                for i, item in enumerate(value):
                    out += _tao_paths(item, f"{path}[{i}].")
            elif message.HasField(fd.name):
                out += _tao_paths(value, path + ".")
        elif fd.name in _PATH_FIELDS:
            out += [(f"{path}[{i}]", v) for i, v in enumerate(value)] if _repeated(fd) else [(path, value)]
    return out


def _tao_facts(m, kind: str) -> dict:
    paths = sorted((p, v) for p, v in _tao_paths(m) if v)
    if kind != "train":
        k = m.kitti_config if m.WhichOneof("convert_config_type") == "kitti_config" else type(m.kitti_config)()
        return dict(paths=paths, target_class_mapping=dict(m.target_class_mapping),
                    image_extension=k.image_extension or ".png", kitti_root_directory_path=k.root_directory_path,
                    kitti_image_dir_name=k.image_dir_name, kitti_label_dir_name=k.label_dir_name,
                    num_partitions=k.num_partitions, num_shards=k.num_shards, partition_mode=k.partition_mode,
                    val_split=k.val_split)
    ds, pre, tc, ev = m.dataset_config, m.augmentation_config.preprocessing, m.training_config, m.evaluation_config
    which = ds.WhichOneof("dataset_split_type")
    val = ds.validation_data_source if which == "validation_data_source" else None
    return dict(
        paths=paths, target_class_mapping=dict(ds.target_class_mapping),
        output_width=pre.output_image_width, output_height=pre.output_image_height,
        output_channels=pre.output_image_channel, enable_auto_resize=pre.enable_auto_resize,
        min_bbox_width=pre.min_bbox_width, min_bbox_height=pre.min_bbox_height, image_extension=ds.image_extension,
        cost_function_classes=[t.name for t in m.cost_function_config.target_classes],
        bbox_rasterizer_classes=sorted(m.bbox_rasterizer_config.target_class_config),
        postprocessing_classes=sorted(m.postprocessing_config.target_class_config),
        evaluation_classes=sorted(set(ev.minimum_detection_ground_truth_overlap) | set(ev.evaluation_box_config)),
        num_epochs=tc.num_epochs, checkpoint_interval=tc.checkpoint_interval, batch_size_per_gpu=tc.batch_size_per_gpu,
        validation_fold=ds.validation_fold if which == "validation_fold" else None,
        has_validation_data_source=val is not None,
        tfrecords_paths=[s.tfrecords_path for s in ds.data_sources],
        image_directory_paths=[s.image_directory_path for s in ds.data_sources],
        validation_tfrecords_path=val.tfrecords_path if val else "",
        validation_image_directory_path=val.image_directory_path if val else "",
        pretrained_model_file=m.model_config.pretrained_model_file,
        visualizer_enabled=tc.visualizer.enabled, scalar_logging_frequency=tc.visualizer.scalar_logging_frequency,
        infrequent_logging_frequency=tc.visualizer.infrequent_logging_frequency,
        validation_period_during_training=ev.validation_period_during_training,
        first_validation_epoch=ev.first_validation_epoch,
    )


def _our_facts(doc) -> dict:
    f = extract_facts(doc).to_dict()
    f["paths"] = sorted((p["field"], p["value"]) for p in f.pop("path_fields") if p["value"])
    for key in ("bbox_rasterizer_classes", "postprocessing_classes", "evaluation_classes"):
        f[key] = sorted(f[key])
    return {k: ("" if v is None and k != "validation_fold" else v) for k, v in f.items()}


def _equal(a, b) -> bool:
    if isinstance(a, dict) and isinstance(b, dict) and set(b) <= set(a):
        return all(_equal(a[k], b[k]) for k in b)
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return a == b and type(a) is type(b) or (isinstance(a, (int, float)) and isinstance(b, (int, float)) and a == b
                                              and not isinstance(a, bool) and not isinstance(b, bool))
