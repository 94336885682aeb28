"""The training flow end to end on local files: real Prefect API, real dockerd, stand-in TAO."""

from __future__ import annotations

import pytest
from prefect.client.orchestration import get_client

from flows.train import train_detectnet_v2
from tasks.request import TrainRequest
from tests.flow.conftest import request_fields

pytestmark = pytest.mark.services


def artifacts_of(flow_run_id) -> dict[str, object]:
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
    return {a.key: a for a in found}


def test_local_end_to_end_converts_trains_and_publishes(prefect_api, demo_data, engine_env, tmp_path):
    image = engine_env()
    tfrecords = tmp_path / "tfrecords"
    tfrecords.mkdir()
    request = TrainRequest(**request_fields(demo_data, tfrecords=str(tfrecords), output=str(tmp_path / "out"), image=image))
    state = train_detectnet_v2(request, return_state=True)
    assert state.is_completed(), state.message
    result = state.result()
    assert result.status == "trained" and result.converted_tfrecords
    published = tmp_path / "out" / "shapes" / "run-1"
    assert (published / "weights" / "shapes_detector.hdf5").is_file()
    assert (published / "status.json").is_file()
    assert result.model_location == str(published / "weights" / "shapes_detector.hdf5")
    assert result.epochs_run == 3
    # TFRecords were published beside the data, shards only, with the dataset they came from
    names = sorted(p.name for p in tfrecords.iterdir())
    assert any(n.startswith("shapes-fold-000-of-002") for n in names)
    assert ".taoflow-dataset.json" in names and not any(n.endswith("_warning.json") for n in names)
    arts = artifacts_of(state.state_details.flow_run_id)
    assert {"train-summary", "dataset-validation", "trained-model"} <= set(arts)
    assert "detectnet_v2 train" in arts["train-summary"].data
