"""One test per check code, each on real files written to disk (cases in check_cases.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.dataset import CHECKS, DatasetValidation, validate_dataset
from tests.dataset.check_cases import CASES
from tests.dataset.kitti import make_dataset, train_facts


def test_every_check_code_has_a_case():
    assert set(CASES) == set(CHECKS)


def test_clean_dataset_has_no_findings(tmp_path):
    root = make_dataset(tmp_path / "data", 3)
    report = validate_dataset(DatasetValidation(train_facts(), root))
    assert report.counts == {} and report.ok
    assert report.totals == {"images": 3, "labels": 3, "pairs": 3, "objects": 9, "empty_label_files": 0}


@pytest.mark.parametrize("code", list(CASES))
def test_check_code(code, tmp_path):
    root = make_dataset(tmp_path / "data", 3)
    overrides, kwargs = CASES[code](root)
    report = validate_dataset(DatasetValidation(train_facts(**overrides), root, **kwargs))
    assert report.counts.get(code, 0) >= 1, f"{code} not reported; got {report.counts}"
    example = report.examples[code][0]
    assert example.severity == CHECKS[code].severity and example.hint == CHECKS[code].fix
    assert example.file, "every finding names its file"
    if code.startswith("label.") and code != "label.unreadable":
        assert example.file.endswith("000001.txt") and example.line is not None
    assert report.ok == (CHECKS[code].severity == "warning" and all(
        CHECKS[c].severity == "warning" for c in report.counts)), report.counts


def test_catalog_lists_every_code():
    catalog = (Path(__file__).resolve().parents[2] / "docs" / "preflight.md").read_text()
    assert [c for c in CHECKS if f"| `{c}` |" not in catalog] == []
