"""The training flow end to end on local files: real Prefect API, real dockerd, stand-in TAO."""

from __future__ import annotations

import pytest
from prefect.client.orchestration import get_client

from flows.train import train_detectnet_v2
from tasks.job.request import TrainRequest
from tests.flow.conftest import plan_preflight, request_fields

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
    # The last validation's metrics (after epoch 3 of 3: the stand-in's 70 / 60 %), in the result
    # and in the run's summary.
    assert result.per_class_ap == {"ellipse": 70.0, "rectangle": 60.0} and result.final_map == 65.0
    # TFRecords were published beside the data, shards only, with the dataset they came from
    names = sorted(p.name for p in tfrecords.iterdir())
    assert any(n.startswith("shapes-fold-000-of-002") for n in names)
    assert ".taoflow-dataset.json" in names and not any(n.endswith("_warning.json") for n in names)
    arts = artifacts_of(state.state_details.flow_run_id)
    assert {"train-summary", "dataset-validation", "trained-model"} <= set(arts)
    # The pictures: artifacts of the run, and the self-contained report published with the model.
    assert {"report-dataset", "report-samples", "report-training", "report-comparison"} <= set(arts)
    assert "data:image/" in arts["report-training"].data
    page = (published / "report.html").read_text()
    assert "<svg" in page or "data:image/" in page
    assert (published / "report.json").is_file() and (published / "model-card.json").is_file()
    assert "detectnet_v2 train" in arts["train-summary"].data
    assert "final mAP: 65.00 %" in arts["train-summary"].data and "| ellipse | 70.00 |" in arts["train-summary"].data


def test_a_second_run_trains_on_the_tfrecords_the_first_converted(prefect_api, demo_data, engine_env, tmp_path):
    """The TFRecords location is converted once and reused: the second run's pre-flight counts the
    records dataset_convert wrote (NVIDIA's random split: the first int(val_split / 100 * N) sorted
    frames are the validation fold) and passes, with no second conversion."""
    image = engine_env()
    tfrecords = tmp_path / "tfrecords"
    tfrecords.mkdir()
    fields = request_fields(demo_data, tfrecords=str(tfrecords), output=str(tmp_path / "out"), image=image)
    state = train_detectnet_v2(TrainRequest(**fields), return_state=True)
    assert state.is_completed(), state.message
    assert state.result().converted_tfrecords

    second = TrainRequest(**(fields | {"model_subfolder": "run-2"}))
    reason, _, report = plan_preflight(second)
    assert reason is None
    assert report.ok, report.to_markdown()
    images = len(list((demo_data / "data" / "shapes" / "image_2").glob("*.png")))
    validation = int(14 / 100 * images)  # specs/demo_tfrecords.txt: val_split 14, fold 0 is validation_fold 0
    assert report.frames == {"train": images - validation, "validation": validation}
    state = train_detectnet_v2(second, return_state=True)
    assert state.is_completed(), state.message
    assert state.result().status == "trained" and not state.result().converted_tfrecords


def test_component_inputs_flow_applies_the_seed_mapping(prefect_api, demo_data, engine_env, tmp_path):
    """The migration path: an AzureML pipeline's flat inputs, unchanged, through the real API."""
    from flows.train import train_from_component_inputs
    from tests.flow.conftest import CONVERT_SPEC, DATA_REF, MODEL_REF, TFR_REF, TRAIN_SPEC

    image = engine_env()
    import shutil

    shutil.copytree(demo_data / "pretrained" / "resnet18", tmp_path / "models" / "shapes" / "resnet18")
    tfrecords = tmp_path / "tfr" / "shapes"
    tfrecords.mkdir(parents=True)
    inputs = {
        "model_app_name": "shapes",
        "num_epochs": "4",
        "training_data_dir": str(demo_data / "data"),
        "training_data_subdir": "shapes",
        "specfile_reference_training_data_dir": DATA_REF,
        "training_tf_records_dir": str(tmp_path / "tfr"),
        "training_tf_records_subdir": "shapes",
        "specfile_reference_training_tf_records_dir": TFR_REF,
        "base_model_dir": str(tmp_path / "models"),  # + model_app_name + base_model_subdir
        "base_model_subdir": "resnet18",
        "specfile_reference_model_dir": MODEL_REF,
        "original_specs": str(TRAIN_SPEC.parent),
        "specs_file": TRAIN_SPEC.name,
        "num_gpus": "1",
        "name_string_for_the_model": "seed_model",
        "model_subfolder": "from-seed",
        "use_amp": "False",
        "trained_model_dir": str(tmp_path / "trained"),
        "image": image,
        "docker_gpus": "none",
        "dataset_convert_spec": str(CONVERT_SPEC),  # ours, beside the seed's names: the TFRecords are empty
    }
    state = train_from_component_inputs(inputs, dry_run=True, return_state=True)
    assert state.is_completed(), state.message
    result = state.result()
    assert result.status == "planned"
    assert any("dataset_convert would run first" in n for n in result.notes)
    assert result.results_location == str(tmp_path / "trained" / "shapes" / "from-seed")
    assert "-n seed_model" in result.launch_plan
    assert f"{tmp_path}/models/shapes/resnet18 -> /workspace/taoflow/base_model (ro)" in result.launch_plan
