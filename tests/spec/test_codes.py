"""Every code `taoflow spec check` can report, on an edit of a real spec, against docs/preflight.md.

Each case edits one of NVIDIA's real specs (../shared/reference/specs) and must produce its code with
the severity the catalog states; the catalog must list exactly these codes.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tasks.errors import SpecError
from tasks.spec import check_spec, parse_spec, rewrite_spec
from tests.spec._specs import spec_text

TRAIN = "tao_tutorials_5.5__detectnet_v2_train_resnet18_kitti.txt"
CONVERT = "tao_tutorials_5.5__detectnet_v2_tfrecords_kitti_trainval.txt"
CATALOG = Path(__file__).resolve().parents[2] / "docs" / "preflight.md"

# code -> the edit of a real spec that makes it (tests/spec/cases/spec_codes.json)
CASES = {code: ({"train": TRAIN, "convert": CONVERT}[c["spec"]], c["kind"], c["old"], c["new"])
         for code, c in json.loads((Path(__file__).with_name("cases") / "spec_codes.json").read_text()).items()}


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
