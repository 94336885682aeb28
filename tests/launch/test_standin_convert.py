"""The stand-in `dataset_convert` against NVIDIA's converter (kitti_converter_lib.py,
dataset_converter_lib.py, converter_lib.py; tao-source-facts.md §6), on both launchers: real
TFRecord files whose every record passes TensorFlow's two CRC checks and parses as a
`tf.train.Example` with the features NVIDIA writes, partitions and shards sized by NVIDIA's
formulas, NVIDIA's status lines, warnings and failures."""

from __future__ import annotations

import ctypes
import json
import math
import uuid

from tasks.dataset.tfrecords import count_records
from tasks.errors import LaunchError
from tasks.launch import build_plan, convert_command, evaluate_command, run_conversion, run_evaluation
from tasks.launch.slots import SPEC_FILE_NAME, Slot, container_path, container_spec_file
from tests.dataset.kitti import encoded, make_dataset
from tests.launch.harness import Recorder
from tests.standin.tf_example import read_examples

PREFIX = "kitti"


def _convert(harness, spec_body: str, *, expect_failure: bool = False):
    """Write `spec_body` (with DATA for the KITTI root as this launcher sees it) and run dataset_convert."""
    root = harness.root
    data_path = container_path(Slot.TRAINING_DATA) if harness.kind == "docker" else str(root / "data")
    specs, out = root / "specs", root / "results"
    specs.mkdir(exist_ok=True)
    (specs / "convert.txt").write_bytes(spec_body.replace("DATA", data_path).encode())
    results = container_path(Slot.RESULTS)
    plan = build_plan(
        convert_command(spec=f"{container_path(Slot.SPEC)}/convert.txt", output_prefix=f"{results}/tfrecords/{PREFIX}",
                        results_dir=results),
        slots={Slot.SPEC: specs, Slot.TRAINING_DATA: root / "data", Slot.RESULTS: out},
        run_id=f"convert-{uuid.uuid4().hex[:8]}", image=harness.image or "x", docker_gpus="none",
        user=harness.user, network_mode="none",
    ).with_options(ulimits=())
    failure = None
    try:
        run_conversion(plan, harness.launcher)
    except LaunchError as exc:
        failure = exc
    assert (failure is not None) == expect_failure, failure
    statuses = [json.loads(line) for line in (out / "status.json").read_text().splitlines()]
    shards = {p.name: p for p in sorted((out / "tfrecords").glob(f"{PREFIX}-*"))}
    return shards, statuses, out


def _kitti(spec_fields: str) -> str:
    return ('kitti_config {\n  root_directory_path: "DATA"\n  image_dir_name: "image_2"\n'
            f'  label_dir_name: "label_2"\n  image_extension: ".png"\n{spec_fields}}}\n')


def _shard(fold: int, shard: int, shards: int) -> str:
    return f"{PREFIX}-fold-{fold:03d}-of-002-shard-{shard:05d}-of-{shards:05d}"


def _f32(value: float) -> float:
    return ctypes.c_float(value).value  # what a proto float field holds (C's double -> float)


def test_random_split_writes_real_records_sized_like_nvidia(harness):
    data = make_dataset(harness.root / "data", n=11, classes=("Car", "pedestrian"), objects=2, seed=3)
    # one degenerate box (x1 >= x2): dropped from the record, listed in <-o>_warning.json
    with open(data / "label_2" / "000004.txt", "a") as fh:
        fh.write("Car 0.00 0 0.00 50.00 10.00 50.00 30.00 0 0 0 0 0 0 0\n")
    shards, statuses, out = _convert(harness, _kitti('  partition_mode: "random"\n  num_partitions: 2\n'
                                                     '  val_split: 20\n  num_shards: 3\n'))

    # int(0.20 * 11) = 2 validation frames, the first two of the sorted listing, in fold 0; each
    # partition in 3 shards of len // 3 frames, the last one taking the rest (empty shard files too)
    sizes = {name: count_records(str(path)) for name, path in shards.items()}
    assert sizes == {_shard(0, 0, 3): 0, _shard(0, 1, 3): 0, _shard(0, 2, 3): 2,
                     _shard(1, 0, 3): 3, _shard(1, 1, 3): 3, _shard(1, 2, 3): 3}
    records = {name: read_examples(path) for name, path in shards.items()}
    fold0 = [r for name, rs in records.items() if "fold-000" in name for r in rs]
    assert sorted(r["frame/id"][0] for r in fold0) == [b"image_2/000000", b"image_2/000001"]

    # every frame once, its features as NVIDIA writes them from the label file and the image
    frames = {r["frame/id"][0].decode().split("/")[1]: r for rs in records.values() for r in rs}
    assert sorted(frames) == [f"{i:06d}" for i in range(11)]
    counted: dict[str, int] = {}
    for stem, record in frames.items():
        lines = [line.split() for line in (data / "label_2" / f"{stem}.txt").read_text().splitlines() if line.strip()]
        kept = [f for f in lines if int(float(f[4])) < int(float(f[6])) and int(float(f[5])) < int(float(f[7]))]
        assert record["frame/width"] == [1248] and record["frame/height"] == [384]
        assert record["target/object_class"] == [f[0].lower().encode() for f in kept]
        assert record["target/occlusion"] == [int(float(f[2])) for f in kept]
        for column, name in enumerate(("truncation", None, "observation_angle", "coordinates_x1",
                                       "coordinates_y1", "coordinates_x2", "coordinates_y2", "world_bbox_h",
                                       "world_bbox_w", "world_bbox_l", "world_bbox_x", "world_bbox_y", "world_bbox_z",
                                       "world_bbox_rot_y"), start=1):
            if name:
                assert record[f"target/{name}"] == [_f32(float(f[column])) for f in kept], (stem, name)
        for f in kept:
            counted[f[0].lower()] = counted.get(f[0].lower(), 0) + 1
    root = container_path(Slot.TRAINING_DATA) if harness.kind == "docker" else data
    assert json.loads((out / "tfrecords" / f"{PREFIX}_warning.json").read_text()) == {
        f"{root}/label_2/000004.txt_2": [50, 10, 50, 30]}

    messages = [s["message"] for s in statuses]
    assert messages[:5] == ["Starting Object Detection Dataset Convert.", "Instantiating a kitti converter",
                            "Generating partitions", "Num images in\nTrain: 9\tVal: 2",
                            "Validation data in partition 0. Hence, while choosing the validationset during training "
                            "choose validation_fold 0."]
    assert messages[5:11] == [f"Writing partition {p}, shard {s}" for p in (0, 1) for s in (0, 1, 2)]
    assert [s["status"] for s in statuses[-2:]] == ["SUCCESS", "SUCCESS"]
    assert messages[-2:] == ["TFRecords generation complete.", "Dataset convert finished successfully."]
    assert statuses[-1]["kpi"] == {"num_images": 11} and statuses[-1]["categorical"] == {"num_objects": counted}


def test_empty_partitions_and_sequence_folds_follow_nvidia(harness):
    data = make_dataset(harness.root / "data", n=7, seed=5)
    # val_split 0: partition 0 is empty, _shard() skips it and enumerate() gives the training
    # partition the number 0 -- NVIDIA's files then say fold-000 for training data
    shards, statuses, _ = _convert(harness, _kitti('  partition_mode: "random"\n  num_partitions: 2\n'
                                                   '  num_shards: 2\n'))
    assert {n: count_records(str(p)) for n, p in shards.items()} == {_shard(0, 0, 2): 3, _shard(0, 1, 2): 4}
    assert "Skipped validation data." in [s["message"] for s in statuses]

    # sequence mode: sequences sorted by (-frames, name) dealt round-robin, the list reversed;
    # num_shards 0 is one shard and no shard suffix
    (data / "seq.json").write_text(json.dumps({"b": ["000000", "000001", "000002"], "a": ["000003", "000004"],
                                               "c": ["000005", "000006"]}))
    for old in (harness.root / "results" / "tfrecords").iterdir():
        old.unlink()
    shards, statuses, _ = _convert(harness, _kitti('  partition_mode: "sequence"\n  num_partitions: 2\n'
                                                   '  kitti_sequence_to_frames_file: "seq.json"\n'))
    ids = {n: sorted(r["frame/id"][0].decode()[-6:] for r in read_examples(p)) for n, p in shards.items()}
    assert ids == {f"{PREFIX}-fold-000-of-002": ["000003", "000004"],
                   f"{PREFIX}-fold-001-of-002": ["000000", "000001", "000002", "000005", "000006"]}
    assert "Total number of images: 7" in [s["message"] for s in statuses]


def test_conversion_failures_end_like_nvidia(harness):
    make_dataset(harness.root / "data", n=4, seed=1)
    # no partition_mode: NotImplementedError after "Generating partitions", nothing written
    shards, statuses, _ = _convert(harness, _kitti("  num_partitions: 2\n"), expect_failure=True)
    assert shards == {}
    assert (statuses[-1]["status"], statuses[-1]["message"]) == (
        "FAILURE", "Unknown partition mode. Please stick to either random or sequence")
    # a 16th field (a score column) in the last frame: AssertionError after fold 0 was written
    with open(harness.root / "data" / "label_2" / "000003.txt", "a") as fh:
        fh.write("car 0 0 0 1 2 30 40 0 0 0 0 0 0 0 0.9\n")
    shards, statuses, _ = _convert(harness, _kitti('  partition_mode: "random"\n  num_partitions: 2\n'
                                                   '  val_split: 50\n  num_shards: 1\n'), expect_failure=True)
    assert sorted(shards) == [_shard(0, 0, 1), _shard(1, 0, 1)]
    assert count_records(str(shards[_shard(0, 0, 1)])) == 2
    assert (statuses[-1]["status"], statuses[-1]["message"]) == (
        "FAILURE", "Ground truth kitti labels should have only 15 fields.")


def test_values_are_read_as_python_floats_and_stored_as_proto_floats(harness):
    data = harness.root / "data"
    (data / "image_2").mkdir(parents=True)
    (data / "label_2").mkdir()
    (data / "image_2" / "a.jpg").write_bytes(encoded("jpg", (640, 480)))
    odd = ["-0", "1e-40", "3.4028236e38", "1e39", "nan", "0.1", "1_000.5", "+2.5", "-1e-45", "INF"]
    lines = [f"Car {v} -1 {v} 10.9 20 30 40.2 {v} 1 2 3 4 5 -6.5" for v in odd if v not in ("nan", "INF")]
    lines.append("Van 0.5 2 0 1 2 3 4 nan 1 INF 3 4 5 6")
    (data / "label_2" / "a.txt").write_bytes(("\r\n".join(lines[:3]) + "\r" + "\n".join(lines[3:]) + "\n").encode())
    shards, _, _ = _convert(harness, _kitti('  image_extension: ".jpg"\n  partition_mode: "random"\n'
                                            '  num_partitions: 2\n  num_shards: 1\n'))
    (record,) = [r for p in shards.values() for r in read_examples(p)]
    assert record["frame/width"] == [640] and record["frame/height"] == [480]
    fields = [line.split() for line in lines]
    for column, name in ((1, "truncation"), (3, "observation_angle"), (7, "coordinates_y2"), (8, "world_bbox_h"),
                         (10, "world_bbox_l"), (14, "world_bbox_rot_y")):
        expected = [_f32(float(f[column])) for f in fields]
        got = record[f"target/{name}"]
        assert len(got) == len(expected) and all(
            (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
            for a, b in zip(got, expected)), (name, got, expected)
    assert record["target/occlusion"] == [-1] * (len(fields) - 1) + [2]
    assert record["target/object_class"] == [b"car"] * (len(fields) - 1) + [b"van"]


def test_the_spec_is_read_as_tao_reads_it(harness):
    make_dataset(harness.root / "data", n=5, seed=2)
    # bare-CR line ends (universal newlines), a one-line block, comments, a value given twice (the last wins)
    spec = ('# converter spec\rkitti_config { root_directory_path: "DATA" # the root {\r  image_dir_name: "image_2"'
            ' label_dir_name: "label_2"; num_shards: 4 }\rkitti_config {\r  partition_mode: "random"\r'
            '  num_partitions: 2 val_split: 40 num_shards: 1\r}\r')
    shards, _, _ = _convert(harness, spec)
    assert {n: count_records(str(p)) for n, p in shards.items()} == {_shard(0, 0, 1): 2, _shard(1, 0, 1): 3}


def test_records_carry_point_cloud_ids_when_configured(harness):
    make_dataset(harness.root / "data", n=2, seed=4)
    shards, _, _ = _convert(harness, _kitti('  partition_mode: "random"\n  num_partitions: 2\n  val_split: 50\n'
                                            '  num_shards: 1\n  point_clouds_dir: "velodyne"\n'))
    records = [r for p in shards.values() for r in read_examples(p)]
    assert sorted(r["point_cloud/id"][0] for r in records) == [b"velodyne/000000", b"velodyne/000001"]
    assert all(r["point_cloud/num_input_channels"] == [4] for r in records)


def test_unmodelled_options_are_refused_not_ignored(harness):
    make_dataset(harness.root / "data", n=2, seed=4)
    _, statuses, _ = _convert(harness, _kitti('  partition_mode: "random"\n  num_partitions: 2\n'
                                              '  calibrations_dir: "calib"\n'), expect_failure=True)
    assert statuses[-1]["status"] == "FAILURE" and "does not model" in statuses[-1]["message"]


def test_evaluate_counts_the_validation_records_the_converter_wrote(harness):
    """evaluate's "Found N samples in validation set" and its steps follow the validation fold's records."""
    make_dataset(harness.root / "data", n=11, seed=6)
    shards, _, out = _convert(harness, _kitti('  partition_mode: "random"\n  num_partitions: 2\n  val_split: 40\n'
                                              '  num_shards: 2\n'))
    tfrecords = container_path(Slot.TRAINING_TFRECORDS) if harness.kind == "docker" else str(out / "tfrecords")
    slots = harness.folders(3)
    spec = slots[Slot.SPEC] / SPEC_FILE_NAME
    shards_glob = f"{tfrecords}/{PREFIX}-fold-*"
    sources = f'dataset_config {{ data_sources {{ tfrecords_path: "{shards_glob}" }} validation_fold: 0 }}'
    spec.write_text(spec.read_text() + sources + "\ntraining_config { batch_size_per_gpu: 2 }\n")
    (harness.root / "model").mkdir()
    (harness.root / "model" / "m.hdf5").write_text("standin model after epoch 3\n")
    plan = build_plan(
        evaluate_command(spec=container_spec_file(), model=f"{container_path(Slot.EVALUATED_MODEL)}/m.hdf5",
                         results_dir=container_path(Slot.RESULTS)),
        slots={Slot.SPEC: slots[Slot.SPEC], Slot.EVALUATED_MODEL: harness.root / "model",
               Slot.TRAINING_TFRECORDS: out / "tfrecords", Slot.RESULTS: harness.root / "evaluate"},
        run_id=f"evaluate-{uuid.uuid4().hex[:8]}", image=harness.image or "x", docker_gpus="none", user=harness.user,
        network_mode="none",
    ).with_options(ulimits=())
    seen = Recorder()
    run_evaluation(plan, harness.launcher, seen.observer())
    validation = sum(count_records(str(p)) for n, p in shards.items() if "-fold-000-" in n)
    assert validation == int(0.40 * 11)
    assert any(f"Found {validation} samples in validation set" in line for line in seen.lines)
    assert any(f"step 0 / {validation // 2}," in line for line in seen.lines)
