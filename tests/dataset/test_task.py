"""The Prefect task against a real Prefect API: the report becomes an artifact, errors fail the run."""

from __future__ import annotations

import uuid

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

from tasks.dataset.task import validate_dataset_task
from tasks.errors import DatasetError
from tests.dataset.check_cases import c_nan
from tests.dataset.kitti import make_dataset, train_facts

pytestmark = pytest.mark.services


def _artifact(key: str):
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
    assert len(found) == 1
    return found[0]


@flow
def check(root: str, key: str):
    return validate_dataset_task(train_facts(), root, artifact_key=key)


def test_clean_dataset_publishes_the_report(prefect_api, tmp_path):
    root = make_dataset(tmp_path / "data", 3)
    key = f"dataset-{uuid.uuid4().hex[:8]}"
    report = check(str(root), key)
    assert report.ok and report.totals["pairs"] == 3
    artifact = _artifact(key)
    assert artifact.type == "markdown" and "# Dataset validation: passed" in artifact.data
    assert artifact.description == report.summary()


def test_errors_raise_dataset_error_after_publishing(prefect_api, tmp_path):
    root = make_dataset(tmp_path / "data", 3)
    c_nan(root)
    key = f"dataset-{uuid.uuid4().hex[:8]}"
    with pytest.raises(DatasetError) as info:
        check(str(root), key)
    assert info.value.problems[0].code == "label.not-finite" and info.value.problems[0].line == 1
    assert not info.value.transient
    artifact = _artifact(key)
    assert "FAILED" in artifact.data and "000001.txt:1" in artifact.data
