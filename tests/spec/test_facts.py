"""Facts for the validator and the flow, from the real specs."""

from __future__ import annotations

from tasks.spec import extract_facts, parse_spec
from tests.spec._specs import spec_text

BASE = "tao_tutorials_5.5__detectnet_v2_train_resnet18_kitti.txt"


def test_train_facts():
    f = extract_facts(parse_spec(spec_text(BASE), BASE))
    assert (f.output_width, f.output_height, f.output_channels, f.image_extension) == (1248, 384, 3, "png")
    assert list(f.target_class_mapping.items())[-2:] == [("person_sitting", "pedestrian"), ("van", "car")]
    assert f.mapping_key_lines["van"] == 25
    assert f.cost_function_classes == f.bbox_rasterizer_classes == ["car", "cyclist", "pedestrian"]
    assert f.evaluation_classes == ["car", "cyclist", "pedestrian"]
    assert (f.num_epochs, f.checkpoint_interval, f.batch_size_per_gpu, f.validation_fold) == (120, 10, 4, 0)
    assert f.tfrecords_paths == ["/workspace/tao-experiments/data/tfrecords/kitti_trainval/*"]
    assert [(p.field, p.line, p.column) for p in f.path_fields] == [
        ("dataset_config.data_sources[0].tfrecords_path", 4, 21),
        ("dataset_config.data_sources[0].image_directory_path", 5, 27),
        ("model_config.pretrained_model_file", 94, 26),
    ]
    assert f.visualizer_enabled and (f.scalar_logging_frequency, f.infrequent_logging_frequency) == (50, 5)
    assert (f.validation_period_during_training, f.first_validation_epoch) == (10, 30)


def test_dataset_convert_facts():
    name = "tao_tutorials_5.5__detectnet_v2_tfrecords_kitti_trainval.txt"
    f = extract_facts(parse_spec(spec_text(name), name, "dataset_convert"))
    assert (f.kitti_root_directory_path, f.kitti_image_dir_name, f.kitti_label_dir_name) == (
        "/workspace/tao-experiments/data/training", "image_2", "label_2")  # fmt: skip
    assert (f.image_extension, f.partition_mode, f.num_partitions, f.num_shards, f.val_split) == (".png", "random", 2, 10, 14.0)


def test_wrong_types_read_as_unset():
    f = extract_facts(parse_spec('augmentation_config { preprocessing { output_image_width: "wide" } }'))
    assert f.output_width == 0


def _edited(old: str, new: str) -> str:
    text = spec_text(BASE)
    assert text.count(old) >= 1, old
    return text.replace(old, new, 1)


def test_facts_are_what_tao_reads_not_what_is_written_first():
    # A map entry without its key reads as key "" (facts §5); a key given twice keeps the last entry.
    f = extract_facts(parse_spec(_edited('    key: "van"\n', "")))
    assert f.target_class_mapping[""] == "car" and "van" not in f.target_class_mapping
    f = extract_facts(parse_spec(_edited('    key: "van"\n    value: "car"', '    key: "car"\n    value: "truck"')))
    assert f.target_class_mapping["car"] == "truck"
    # A later validation_data_source (oneof) drops validation_fold, even from another dataset_config block.
    f = extract_facts(parse_spec(spec_text(BASE) + 'dataset_config { validation_data_source { tfrecords_path: "/v/*" } }\n'))
    assert f.validation_fold is None and f.has_validation_data_source and f.validation_tfrecords_path == "/v/*"
    # Escapes are bytes: \303\251 is é; sizes read with float32 precision as TAO stores them.
    f = extract_facts(parse_spec(_edited('image_directory_path: "/workspace/tao-experiments/data/training"',
                                         r'image_directory_path: "/workspace/caf\303\251"')))
    assert f.image_directory_paths == ["/workspace/café"]
    f = extract_facts(parse_spec(_edited("min_bbox_width: 1.0", "min_bbox_width: 0.1")))
    assert f.min_bbox_width == 0.10000000149011612


def test_protobuf_versions_warned_not_decided():
    from tasks.spec import check_spec

    # `010` is refused as a float by the current protobuf and read as 10.0 by 3.20.x (TAO's TF1 containers).
    problems = check_spec(_edited("translate_max_x: 8.0", "translate_max_x: 010"))
    assert [(p.code, p.severity, p.line) for p in problems] == [("protobuf-version", "warning", 42)]
    assert "the current protobuf refuses it" in problems[0].message and "3.20.x" in problems[0].message
    assert extract_facts(parse_spec(_edited("min_bbox_width: 1.0", "min_bbox_width: 010"))).min_bbox_width == 10.0
    problems = check_spec(_edited('image_extension: "png"', r'image_extension: "p\u00e9g"'))
    assert [(p.code, p.severity) for p in problems] == [("protobuf-version", "warning")], [p.render() for p in problems]
