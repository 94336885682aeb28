"""TFRecords below the reference: `<reference>/shapes_trainval/*`, the layout of NVIDIA's own notebooks.

The spec's reference names the TFRecords root and its glob reaches into a sub-folder of it. Pre-flight
(as `taoflow plan` runs it) must find the shards there, count their frames and not ask for a
conversion; the flow then trains end to end with the stand-in TAO (real Prefect API, real dockerd).
"""

from __future__ import annotations

import pytest

from flows.train import train_detectnet_v2
from tasks.job import preflight as job  # the module: the package exports no name of a submodule
from tasks.job.request import TrainRequest
from tasks.job.workspace import Workspace
from tasks.launch.slots import Slot, container_path
from tests.dataset.check_cases import write_shard
from tests.flow.conftest import TRAIN_SPEC, plan_preflight, request_fields

TFR_ROOT_REF = "/workspace/tao-experiments/data/tfrecords"
SHARDS = {"shapes-fold-000-of-002-shard-00000-of-00001": 9, "shapes-fold-001-of-002-shard-00000-of-00001": 55}


def _subfolder_request(demo_data, tmp_path, image: str, *, with_shards: bool = True) -> TrainRequest:
    spec = tmp_path / "train_subfolder.txt"
    text = TRAIN_SPEC.read_text()
    old = f'"{TFR_ROOT_REF}/shapes_trainval/shapes-fold-*"'
    assert text.count(old) == 1
    spec.write_text(text.replace(old, f'"{TFR_ROOT_REF}/shapes_trainval/*"'))
    shards = tmp_path / "tfrecords" / "shapes_trainval"
    shards.mkdir(parents=True)
    for name, records in SHARDS.items() if with_shards else ():
        write_shard(shards / name, records)
    fields = request_fields(demo_data, tfrecords=str(tmp_path / "tfrecords"), output=str(tmp_path / "out"),
                            image=image, spec=str(spec))
    fields["training_tfrecords"]["spec_reference"] = TFR_ROOT_REF
    return TrainRequest(**fields)


def test_conversion_reason_sees_shards_in_subfolders(tmp_path):
    from tasks.job.workspace import StagedInput

    class Request:
        dataset_convert_spec = "convert.txt"

    tfr = tmp_path / "tfr"
    (tfr / "kitti_trainval").mkdir(parents=True)
    staged = {"training_tfrecords": StagedInput("training_tfrecords", str(tfr), tfr, "none", remote=False)}
    (tfr / "kitti_trainval_warning.json").write_text("{}")  # the converter's leftovers are no shards
    assert job.conversion_reason(Request(), staged) == "the TFRecords location is empty"
    write_shard(tfr / "kitti_trainval" / "kitti-fold-000-of-001-shard-00000-of-00001", 2)
    assert job.conversion_reason(Request(), staged) is None


@pytest.mark.services
def test_subfolder_layout_passes_preflight_and_trains(prefect_api, demo_data, engine_env, tmp_path):
    image = engine_env()
    request = _subfolder_request(demo_data, tmp_path, image)

    reason, prepared, report = plan_preflight(request)
    tfr_container = container_path(Slot.TRAINING_TFRECORDS)
    assert prepared.facts.tfrecords_paths == [f"{tfr_container}/shapes_trainval/*"]
    assert reason is None
    assert report.ok, report.to_markdown()
    assert report.frames == {"train": SHARDS["shapes-fold-001-of-002-shard-00000-of-00001"],
                             "validation": SHARDS["shapes-fold-000-of-002-shard-00000-of-00001"]}

    # And the flow end to end with the stand-in TAO: no conversion, trained and published.
    state = train_detectnet_v2(request, return_state=True)
    assert state.is_completed(), state.message
    result = state.result()
    assert result.status == "trained" and not result.converted_tfrecords
    published = tmp_path / "out" / "shapes" / "run-1"
    assert (published / "weights" / "shapes_detector.hdf5").is_file()
    # The spec TAO read (the run folder's rewritten copy; TAO leaves none in -r) keeps the subfolder glob.
    spec_read = Workspace.default().run_dir(result.run_id) / "specs" / "experiment_spec.txt"
    assert f'"{tfr_container}/shapes_trainval/*"' in spec_read.read_text()


@pytest.mark.services
def test_subfolder_layout_is_converted_into_the_subfolder(prefect_api, demo_data, engine_env, tmp_path):
    """An empty TFRecords location: dataset_convert writes the shards where `<ref>/shapes_trainval/*`
    will find them (named after the folder, as NVIDIA's notebooks do), then training uses them."""
    image = engine_env()
    request = _subfolder_request(demo_data, tmp_path, image, with_shards=False)
    state = train_detectnet_v2(request, return_state=True)
    assert state.is_completed(), state.message
    assert state.result().converted_tfrecords
    folder = tmp_path / "tfrecords" / "shapes_trainval"
    shards = sorted(p.name for p in folder.iterdir())
    assert shards and all(n.startswith("shapes_trainval-fold-") for n in shards), shards
    assert not list(folder.glob("*_warning.json"))  # the converter's report never sits under the glob
