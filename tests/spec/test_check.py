"""Checks: real specs clean, the TLT-2 spec rejected exactly as TAO 5 would, each validator rule bites."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tasks.errors import SpecError
from tasks.spec import check_spec, parse_spec, require_valid
from tests.spec._specs import CONVERT_CLEAN, FACE_MASK_TRAIN, TRAIN_CLEAN, spec_text

BASE = "tao_tutorials_5.5__detectnet_v2_train_resnet18_kitti.txt"


@pytest.mark.parametrize("name", TRAIN_CLEAN)
def test_real_train_specs_check_clean(name):
    assert check_spec(spec_text(name), name, "train") == []


@pytest.mark.parametrize("name", CONVERT_CLEAN)
def test_real_dataset_convert_specs_check_clean(name):
    assert check_spec(spec_text(name), name, "dataset_convert") == []


def test_face_mask_tlt2_spec_rejected_like_tao5():
    problems = check_spec(spec_text(FACE_MASK_TRAIN), FACE_MASK_TRAIN, "train")
    assert [(p.code, p.line, p.column, p.severity) for p in problems] == [
        ("wrong-type", 55, 29, "error"),
        ("wrong-type", 66, 29, "error"),
    ]
    assert all("dbscan_min_samples is int32" in p.message and "0.0500000007451" in p.message for p in problems)
    with pytest.raises(SpecError) as info:
        require_valid(parse_spec(spec_text(FACE_MASK_TRAIN), FACE_MASK_TRAIN))
    assert f"{FACE_MASK_TRAIN}:55:29" in str(info.value) and f"{FACE_MASK_TRAIN}:66:29" in str(info.value)


def _edited(old: str, new: str) -> str:
    text = spec_text(BASE)
    assert text.count(old) >= 1, old
    return text.replace(old, new, 1)


# Each case is one of the failures verified against TAO's own validator (reference section 1.12).
@pytest.mark.parametrize(
    "old, new, code, line, words",
    [
        ("  first_validation_epoch: 30\n", "", "invalid-value", 107, "first_validation_epoch is not set"),
        ("output_image_width: 1248", "output_image_width: 1250", "invalid-value", 32, "multiple of 16"),
        ('arch: "resnet"', 'arch: "resnet18"', "invalid-value", 105, "one of resnet"),
        ("dbscan_min_samples: 1", "dbscan_min_samples: 2", "invalid-value", 61, "<= 1"),
        ('name: "detectnet_v2_resnet18_wandb"', 'name: ""', "invalid-value", 261, "non-empty"),
        ("validation_period_during_training: 10", "validation_period_during_training: 0", "invalid-value", 108, "> 0"),
        ("  validation_fold: 0\n", "", "no-validation-data", 2, "neither validation_fold"),
        ("batch_size_per_gpu: 4", "batch_size_per_gpu: 4.5", "wrong-type", 202, "uint32"),
    ],
)
def test_tao_validator_rules(old, new, code, line, words):
    problems = check_spec(_edited(old, new))
    assert [(p.code, p.line) for p in problems] == [(code, line)], [p.render() for p in problems]
    assert words in problems[0].message and problems[0].hint


# TAO 5 validator rules (facts §4) that a by-name check on the real tutorial spec must catch; each
# edit is one line of the real file, and each gives exactly one error at that line.
@pytest.mark.parametrize(
    "old, new, line, words",
    [(c["old"], c["new"], c["line"], c["words"])
     for c in json.loads((Path(__file__).with_name("cases") / "tao5_validator_rules.json").read_text())],
)
def test_tao5_validator_rules_from_the_source(old, new, line, words):
    problems = check_spec(_edited(old, new))
    assert [(p.line, p.severity) for p in problems] == [(line, "error")], [p.render() for p in problems]
    assert words in problems[0].message and problems[0].hint


def test_evaluation_maps_are_required():
    text = spec_text(BASE)
    for name in ("minimum_detection_ground_truth_overlap", "evaluation_box_config"):
        cut = re.sub(r"  %s \{\n(?:    .*\n|      .*\n)*?  \}\n" % name, "", text)
        assert cut.count(name) == 0
        problems = check_spec(cut)
        assert [(p.code, p.line) for p in problems] == [("missing-required", 107)], [p.render() for p in problems]
        assert f"{name} is required in EvaluationConfig" in problems[0].message


def test_validator_judges_blocks_as_tao_merges_them():
    # training_config split in two blocks: TAO merges them, so nothing is missing; the second block is a warning.
    text = _edited("  num_epochs: 120\n", "").replace("\ntraining_config {", "\ntraining_config { num_epochs: 120 }\ntraining_config {", 1)
    problems = check_spec(text)
    assert [(p.code, p.severity) for p in problems] == [("duplicate-block", "warning")], [p.render() for p in problems]
    assert "merges this block into the first one" in problems[0].message


def test_missing_target_class_mapping_and_messages():
    text = spec_text(BASE)
    start = text.index("  target_class_mapping {")
    end = text.index("  validation_fold")
    problems = check_spec(text[:start] + text[end:])
    assert [(p.code, p.line) for p in problems] == [("missing-required", 2)]
    assert "target_class_mapping is required" in problems[0].message
    problems = check_spec("random_seed: 1\n")
    assert {p.code for p in problems} == {"missing-required"}
    assert len(problems) == 8  # the eight top-level messages TAO 5 requires


def test_checkpoint_interval_zero_passes():
    assert check_spec(_edited("checkpoint_interval: 10", "checkpoint_interval: 0")) == []


def test_structure_problems_all_at_once_with_hints():
    text = _edited("  image_extension: \"png\"\n", '  image_extention: "png"\n  validation_data_source { tfrecords_path: "a" image_directory_path: "b" }\n')
    text = text.replace("average_precision_mode: INTEGRATE", "average_precision_mode: INTEGRAT")
    text = text.replace("  num_epochs: 120\n", "  num_epochs: 120\n  num_epochs: 30\n  learning_rate: 5\n")
    problems = check_spec(text, "s.txt")
    by_code = {p.code: p for p in problems}
    duplicates = [p.message for p in problems if p.code == "duplicate-field"]
    assert set(by_code) == {"unknown-field", "oneof-conflict", "bad-enum", "duplicate-field", "wrong-type"}
    assert by_code["unknown-field"].hint == "did you mean 'image_extension'?"
    assert by_code["unknown-field"].line == 7 and by_code["unknown-field"].file == "s.txt"
    assert "validation_fold" in by_code["oneof-conflict"].message
    assert by_code["bad-enum"].hint == "did you mean INTEGRATE?"
    assert any("num_epochs is set twice" in m and "first at line 204" in m for m in duplicates)
    assert "block" in by_code["wrong-type"].message


def test_kind_hint_and_convert_rules():
    (problem, *_) = check_spec(spec_text("tao_tutorials_5.5__detectnet_v2_tfrecords_kitti_trainval.txt"), kind="train")
    assert problem.code == "unknown-field" and "--kind dataset_convert" in problem.hint
    bad = 'kitti_config {\n  root_directory_path: "/d"\n  partition_mode: "random"\n  num_partitions: 3\n  val_split: 100\n  image_extension: "png"\n}\n'
    problems = check_spec(bad, kind="dataset_convert")
    assert [(p.code, p.line, p.severity) for p in problems] == [
        ("invalid-value", 4, "error"),
        ("invalid-value", 5, "error"),
        ("extension-dot", 6, "error"),  # facts §6: the converter then opens <frame>png
    ]


def test_logging_period_longer_than_epochs():
    problems = check_spec(_edited("num_epochs: 120", "num_epochs: 3"))
    assert [(p.code, p.line) for p in problems] == [("logging-period", 232)]


def test_dataset_convert_without_partition_mode_is_an_error():
    # facts §6: the converter raises NotImplementedError("Unknown partition mode") without it.
    name = "tao_tutorials_5.5__detectnet_v2_tfrecords_kitti_trainval.txt"
    text = spec_text(name)
    assert '  partition_mode: "random"\n' in text
    problems = check_spec(text.replace('  partition_mode: "random"\n', ""), name, "dataset_convert")
    assert [(p.code, p.severity) for p in problems] == [("invalid-value", "error")], [p.render() for p in problems]
    assert "partition_mode is not set" in problems[0].message
