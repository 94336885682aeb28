"""Rewrite: the seed's five rebasings + num_epochs give exactly the expected text, nothing else moves."""

from __future__ import annotations

import pytest

from tasks.errors import SpecError
from tasks.launch.slots import Slot, container_path
from tasks.spec import check_spec, extract_facts, parse_spec, rebase_path, rewrite_spec
from tests.spec._specs import FACE_MASK_TRAIN, spec_text

BASE = "tao_tutorials_5.5__detectnet_v2_train_resnet18_kitti.txt"
EXP = "/workspace/tao-experiments"


def _expect(text: str, *pairs: tuple[str, str]) -> str:
    for old, new in pairs:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


def test_seed_five_rebasings_and_epochs_golden():
    # The 5.5 spec with a separate validation source, as a pipeline with validation data writes it.
    original = spec_text(BASE).replace(
        "  validation_fold: 0\n",
        "  validation_data_source: {\n"
        f'    tfrecords_path: "{EXP}/data/tfrecords/kitti_val/*"\n'
        f'    image_directory_path: "{EXP}/data/validation"\n'
        "  }\n"
        f'  #validation_data_source: {{ tfrecords_path: "{EXP}/data/tfrecords/kitti_val/*" }}\n',
    )
    rebasings = {  # the seed's five specfile_reference_* inputs -> the stable container paths
        f"{EXP}/data/training": container_path(Slot.TRAINING_DATA),
        f"{EXP}/data/validation": container_path(Slot.VALIDATION_DATA),
        f"{EXP}/data/tfrecords/kitti_trainval": container_path(Slot.TRAINING_TFRECORDS),
        f"{EXP}/data/tfrecords/kitti_val/": container_path(Slot.VALIDATION_TFRECORDS),
        f"{EXP}/detectnet_v2/pretrained_resnet18/pretrained_detectnet_v2_vresnet18": container_path(Slot.BASE_MODEL),
    }
    result = rewrite_spec(original, rebasings, num_epochs=5)
    expected = _expect(
        original,
        (f'tfrecords_path: "{EXP}/data/tfrecords/kitti_trainval/*"', 'tfrecords_path: "/workspace/taoflow/tfrecords/training/*"'),
        (f'image_directory_path: "{EXP}/data/training"', 'image_directory_path: "/workspace/taoflow/data/training"'),
        (f'    tfrecords_path: "{EXP}/data/tfrecords/kitti_val/*"\n', '    tfrecords_path: "/workspace/taoflow/tfrecords/validation/*"\n'),
        (f'image_directory_path: "{EXP}/data/validation"', 'image_directory_path: "/workspace/taoflow/data/validation"'),
        (
            f'pretrained_model_file: "{EXP}/detectnet_v2/pretrained_resnet18/pretrained_detectnet_v2_vresnet18/resnet18.hdf5"',
            'pretrained_model_file: "/workspace/taoflow/base_model/resnet18.hdf5"',
        ),
        ("  num_epochs: 120\n", "  num_epochs: 5\n"),
    )
    assert result.text == expected
    assert f'#validation_data_source: {{ tfrecords_path: "{EXP}/data/tfrecords/kitti_val/*" }}' in result.text
    assert [(c.field, c.line) for c in result.changes] == [
        ("dataset_config.data_sources[0].tfrecords_path", 4),
        ("dataset_config.data_sources[0].image_directory_path", 5),
        ("dataset_config.validation_data_source.tfrecords_path", 29),
        ("dataset_config.validation_data_source.image_directory_path", 30),
        ("model_config.pretrained_model_file", 98),
        ("training_config.num_epochs", 207),
    ]
    diff_lines = result.diff.splitlines()
    assert sum(1 for ln in diff_lines[2:] if ln.startswith("-")) == 6
    assert sum(1 for ln in diff_lines[2:] if ln.startswith("+")) == 6
    assert check_spec(result.text) == [p for p in check_spec(result.text) if p.severity == "warning"]


def test_face_mask_commented_out_path_untouched_and_unmatched_reference_is_an_error():
    original = spec_text(FACE_MASK_TRAIN)
    result = rewrite_spec(
        original,
        {"/home/data/tfrecords/kitti_trainval": "/t", "/home/data/train": "/d", "/home/detectnet_v2": "/m"},
        num_epochs=3,
    )
    assert result.text == _expect(
        original,
        ('"/home/data/tfrecords/kitti_trainval/*"', '"/t/*"'),
        ('image_directory_path: "/home/data/train"', 'image_directory_path: "/d"'),
        ('"/home/detectnet_v2/pretrained_resnet18/tlt_pretrained_detectnet_v2_vresnet18/resnet18.hdf5"',
         '"/m/pretrained_resnet18/tlt_pretrained_detectnet_v2_vresnet18/resnet18.hdf5"'),
        ("num_epochs: 120", "num_epochs: 3"),
    )
    assert '    #tfrecords_path: "/home/data/tfrecords/kitti_val/*"\n' in result.text
    # The seed would silently ignore a reference found only in a comment; TAO fails an hour later.
    with pytest.raises(SpecError) as info:
        rewrite_spec(original, {"/home/data/train": "/d", "/home/data/test": "/v"})
    message = str(info.value)
    assert "'/home/data/test' matches no path" in message
    assert "line 5: dataset_config.data_sources[0].image_directory_path = /home/data/train" in message


@pytest.mark.parametrize(
    "value, refs, expected",
    [
        ("/data/train", {"/data/train": "/x"}, "/x"),
        ("/data/train/a.png", {"/data/train/": "/x/"}, "/x/a.png"),
        ("/data/training", {"/data/train": "/x"}, None),
        ("/data/train/../val/*", {"/data/val": "/v"}, "/v/*"),
        ("/data/train/sub/*", {"/data": "/a", "/data/train": "/b"}, "/b/sub/*"),  # longest wins
        ("/data/train/", {"/data/train": "/x"}, "/x/"),
        ("data/train", {"/data/train": "/x"}, None),
        ("/data/train", {"/": "/mnt"}, "/mnt/data/train"),
    ],
)
def test_rebase_on_component_boundaries(value, refs, expected):
    hit = rebase_path(value, refs)
    assert (hit[0] if hit else None) == expected


def test_num_epochs_inserted_in_file_style():
    text = "training_config {\n\tbatch_size_per_gpu: 4  # four\n}\n"
    assert rewrite_spec(text, num_epochs=7).text == "training_config {\n\tbatch_size_per_gpu: 4  # four\n\tnum_epochs: 7\n}\n"
    assert rewrite_spec("training_config {}\n", num_epochs=7).text == "training_config {\n  num_epochs: 7\n}\n"
    assert rewrite_spec("random_seed: 1", num_epochs=2).text == "random_seed: 1\ntraining_config {\n  num_epochs: 2\n}\n"
    crlf = "training_config {\r\n    batch_size_per_gpu: 4\r\n}\r\n"
    assert rewrite_spec(crlf, num_epochs=9).text == "training_config {\r\n    batch_size_per_gpu: 4\r\n    num_epochs: 9\r\n}\r\n"


def test_num_epochs_inserted_into_a_bare_cr_file_keeps_its_line_ends_and_lines():
    """A CR-only file (TAO's open() reads each CR as a line end): inserted lines end in CR too, and the
    change names the line TAO (and an editor) shows."""
    inner = rewrite_spec("training_config {\r    batch_size_per_gpu: 4\r}\r", num_epochs=9)
    assert inner.text == "training_config {\r    batch_size_per_gpu: 4\r    num_epochs: 9\r}\r"
    assert [c.line for c in inner.changes] == [3]
    top = rewrite_spec("model_config {\r  arch: \"resnet\"\r}\r", num_epochs=9)
    assert top.text == "model_config {\r  arch: \"resnet\"\r}\rtraining_config {\r  num_epochs: 9\r}\r"
    assert [c.line for c in top.changes] == [4]
    assert top.text.splitlines()[3] == "training_config {"


def test_overrides_typed_and_located():
    text = spec_text(BASE)
    result = rewrite_spec(
        text,
        overrides={
            "training_config.visualizer.scalar_logging_frequency": "2",
            "postprocessing_config.target_class_config[car].clustering_config.dbscan_eps": "0.3",
            "dataset_config.image_extension": "jpg",
            "training_config.regularizer.type": "L2",
        },
    )
    facts = extract_facts(parse_spec(result.text))
    assert facts.scalar_logging_frequency == 2 and facts.image_extension == "jpg"
    assert "dbscan_eps: 0.3\n" in result.text and "type: L2\n" in result.text
    for bad, words in [
        ({"training_config.batch_size_per_gpu": "four"}, "uint32"),
        ({"training_config.num_epoch": "3"}, "did you mean 'num_epochs'"),
        ({"training_config.regularizer.type": "L3"}, "one of NO_REG"),
        ({"postprocessing_config.target_class_config[truck].clustering_config.dbscan_eps": "1"}, "no entry [truck]"),
        ({"dataset_config.data_sources.tfrecords_path": "x"}, "data_sources[0]"),
    ]:
        with pytest.raises(SpecError, match=None) as info:
            rewrite_spec(text, overrides=bad)
        assert words in str(info.value)
    with pytest.raises(SpecError, match="changed twice"):
        rewrite_spec(text, {f"{EXP}/data/training": "/d"}, overrides={"dataset_config.data_sources[0].image_directory_path": "/e"})


def test_rewrite_changes_what_tao_reads():
    # num_epochs written twice, in two training_config blocks: the last one is what TAO reads and what changes.
    text = spec_text(BASE) + "training_config { num_epochs: 30 }\n"
    result = rewrite_spec(text, {}, num_epochs=5)
    assert result.text == spec_text(BASE) + "training_config { num_epochs: 5 }\n"
    assert extract_facts(parse_spec(result.text)).num_epochs == 5
    # A reference that only matches a value TAO reads over is still unmatched.
    text = spec_text(BASE).replace('  pretrained_model_file: "', '  pretrained_model_file: "/old/model.hdf5"\n'
                                   '  pretrained_model_file: "', 1)
    with pytest.raises(SpecError, match="match no path field"):
        rewrite_spec(text, {"/old": "/mnt/model"})
