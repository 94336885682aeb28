"""`conversion_reason`: when taoflow runs dataset_convert before training. Engine-free, every branch
pinned, so a change to the rule cannot pass unnoticed (the service tests only see its effects)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from tasks.job.preflight import TFRECORDS_SOURCE_FILE, conversion_reason
from tasks.job.workspace import StagedInput

SHARD = "kitti-fold-000-of-002-shard-00000-of-00001"


@dataclass
class Request:
    dataset_convert_spec: str | None = "convert.txt"


def staged(tfrecords: Path, fingerprint: str = "data-v1") -> dict[str, StagedInput]:
    return {
        "training_tfrecords": StagedInput("training_tfrecords", str(tfrecords), tfrecords, "tfr", remote=False),
        "training_data": StagedInput("training_data", "/data", Path("/data"), fingerprint, remote=False),
    }


def made_from(tfrecords: Path, fingerprint: str | None, raw: str | None = None) -> None:
    text = raw if raw is not None else json.dumps({"dataset_fingerprint": fingerprint})
    (tfrecords / TFRECORDS_SOURCE_FILE).write_text(text)


def test_no_dataset_convert_spec_never_converts(tmp_path):
    assert conversion_reason(Request(None), staged(tmp_path / "missing")) is None


@pytest.mark.parametrize("layout", ["missing folder", "empty folder", "only the converter's report",
                                    "only the source record"])
def test_no_shard_means_the_location_is_empty(tmp_path, layout):
    tfr = tmp_path / "tfr"
    if layout != "missing folder":
        tfr.mkdir()
    if layout == "only the converter's report":
        (tfr / "kitti_warning.json").write_text("{}")
    if layout == "only the source record":
        made_from(tfr, "data-v1")
    assert conversion_reason(Request(), staged(tfr)) == "the TFRecords location is empty"


@pytest.mark.parametrize("where", [".", "kitti_trainval"])
def test_shards_made_from_this_data_are_used(tmp_path, where):
    tfr = tmp_path / "tfr"
    (tfr / where).mkdir(parents=True)
    (tfr / where / SHARD).write_bytes(b"records")
    assert conversion_reason(Request(), staged(tfr)) is None  # someone else's shards: no record, trusted
    made_from(tfr, "data-v1")
    assert conversion_reason(Request(), staged(tfr)) is None


@pytest.mark.parametrize("record", [{"dataset_fingerprint": "data-v0"}, {"other": 1}, "not json"])
def test_shards_made_from_other_data_are_made_again(tmp_path, record):
    tfr = tmp_path / "tfr"
    tfr.mkdir()
    (tfr / SHARD).write_bytes(b"records")
    made_from(tfr, None, raw=record if isinstance(record, str) else json.dumps(record))
    assert conversion_reason(Request(), staged(tfr)) == "the dataset changed since these TFRecords were made"
