"""Every code `taoflow spec check` can report, on an edit of a real spec, against docs/preflight.md.

Each case edits one of NVIDIA's real specs (../shared/reference/specs) and must produce its code with
the severity the catalog states; the catalog must list exactly these codes.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tasks.errors import SpecError
from tasks.spec import check_spec, parse_spec, rewrite_spec
from tests.spec._specs import spec_text

TRAIN = "tao_tutorials_5.5__detectnet_v2_train_resnet18_kitti.txt"
CONVERT = "tao_tutorials_5.5__detectnet_v2_tfrecords_kitti_trainval.txt"
CATALOG = Path(__file__).resolve().parents[2] / "docs" / "preflight.md"

# code -> (spec, kind, text to replace, replacement)
CASES = {
    "syntax": (TRAIN, "train", "dataset_config {", "dataset_config {{"),
    "unknown-field": (TRAIN, "train", "image_extension:", "image_extention:"),
    "wrong-type": (TRAIN, "train", "batch_size_per_gpu: 4", "batch_size_per_gpu: 4.5"),
    "bad-enum": (TRAIN, "train", "average_precision_mode: INTEGRATE", "average_precision_mode: INTEGRAL"),
    "not-repeated": (TRAIN, "train", "num_epochs: 120", "num_epochs: [120]"),
    "missing-colon": (TRAIN, "train", "  arch: \"resnet\"", "  arch: \"resnet\"\n  freeze_blocks [0, 1]"),
    "duplicate-field": (TRAIN, "train", "num_epochs: 120", "num_epochs: 120\n  num_epochs: 80"),
    "duplicate-block": (TRAIN, "train", "model_config {", "model_config { load_graph: false }\nmodel_config {"),
    "duplicate-key": (TRAIN, "train", '    key: "van"', '    key: "car"'),
    "oneof-conflict": (TRAIN, "train", "  validation_fold: 0", "  validation_fold: 0\n  validation_data_source "
                       '{ tfrecords_path: "/v/*" image_directory_path: "/v" }'),
    "protobuf-version": (TRAIN, "train", "translate_max_x: 8.0", "translate_max_x: 010"),
    "unknown-enum-number": (TRAIN, "train", "average_precision_mode: INTEGRATE", "average_precision_mode: 7"),
    "missing-required": (CONVERT, "dataset_convert", 'partition_mode: "random"', 'partition_mode: "sequence"'),
    "invalid-value": (TRAIN, "train", "output_image_width: 1248", "output_image_width: 1250"),
    "no-validation-data": (TRAIN, "train", "  validation_fold: 0\n", ""),
    "logging-period": (TRAIN, "train", "num_epochs: 120", "num_epochs: 3"),
    "extension-dot": (CONVERT, "dataset_convert", 'image_extension: ".png"', 'image_extension: "png"'),
}


def _catalog() -> dict[str, str]:
    text = CATALOG.read_text()
    section = text[text.index("## Spec check codes"):]
    return dict(re.findall(r"^\| `([a-z-]+)` \| (error|warning) \|", section, re.M))


@pytest.mark.parametrize("code", list(CASES))
def test_spec_code_on_a_real_spec(code):
    name, kind, old, new = CASES[code]
    text = spec_text(name)
    assert text.count(old) >= 1, old
    text = text.replace(old, new, 1)
    try:
        problems = check_spec(parse_spec(text, name, kind))
    except SpecError as exc:
        problems = exc.problems
    found = [p for p in problems if p.code == code]
    assert found, [p.render() for p in problems]
    assert found[0].severity == _catalog()[code] and found[0].line and found[0].hint


def test_unmatched_reference_is_refused_by_the_rewrite():
    with pytest.raises(SpecError) as info:
        rewrite_spec(spec_text(TRAIN), {"/workspace/elsewhere": "/mnt/x"})
    assert [p.code for p in info.value.problems] == ["unmatched-reference"]
    assert _catalog()["unmatched-reference"] == "error"


def test_catalog_lists_every_spec_code():
    assert set(_catalog()) == set(CASES) | {"unmatched-reference"}
