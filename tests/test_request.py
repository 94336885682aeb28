"""TrainRequest and the seed component's flat inputs: every name, every mapping rule, every error."""

from __future__ import annotations

import pickle

import pytest

from tasks.errors import ConfigError, TrainingFailed
from tasks.request import COMPONENT_INPUTS, TrainRequest, join_location

BLOB = "https://acct.blob.core.windows.net"


def seed_inputs(**overrides):
    """A full set of the seed's inputs, as an AzureML pipeline would bind them."""
    inputs = {
        "model_app_name": "parking",
        "num_epochs": "5",
        "training_data_dir": f"{BLOB}/data",
        "training_data_subdir": "kitti/training",
        "specfile_reference_training_data_dir": "/workspace/tao-experiments/data/training",
        "validation_data_dir": f"{BLOB}/data",
        "validation_data_subdir": "kitti/val",
        "specfile_reference_validation_data_dir": "/workspace/tao-experiments/data/val",
        "training_tf_records_dir": f"{BLOB}/tfrecords",
        "training_tf_records_subdir": "kitti_trainval",
        "specfile_reference_training_tf_records_dir": "/workspace/tao-experiments/data/tfrecords/kitti_trainval",
        "validation_tf_records_dir": f"{BLOB}/tfrecords",
        "validation_tf_records_subdir": "kitti_val",
        "specfile_reference_validation_tf_records_dir": "/workspace/tao-experiments/data/tfrecords/kitti_val",
        "base_model_dir": f"{BLOB}/models",
        "base_model_subdir": "pretrained_resnet18",
        "specfile_reference_model_dir": "/workspace/tao-experiments/detectnet_v2/pretrained_resnet18",
        "original_specs": f"{BLOB}/specs",
        "specs_file": "detectnet_v2_train_resnet18_kitti.txt",
        "num_gpus": "2",
        "key": "tlt_encode",
        "name_string_for_the_model": "resnet18_detector",
        "model_subfolder": "run-42",
        "gpu_index": "0,1",
        "use_amp": "True",
        "log_file": "train.log",
        "trained_model_dir": f"{BLOB}/trained",
    }
    inputs.update(overrides)
    return inputs


def test_every_seed_input_name_is_accepted_and_mapped():
    inputs = seed_inputs()
    assert set(COMPONENT_INPUTS) <= set(inputs)
    req = TrainRequest.from_component_inputs(inputs)
    assert req.model_app_name == "parking"
    assert req.num_epochs == 5
    assert req.num_gpus == 2
    assert req.gpu_index == [0, 1]
    assert req.use_amp is True
    assert req.log_file == "train.log"
    assert req.model_name == "resnet18_detector"
    assert req.key is not None and req.key.get_secret_value() == "tlt_encode"
    assert req.model_subfolder == "run-42"
    assert req.output == f"{BLOB}/trained"


def test_seed_mapping_rules_exactly():
    req = TrainRequest.from_component_inputs(seed_inputs())
    # -r = trained_model_dir/model_app_name/model_subfolder
    assert req.results_location == f"{BLOB}/trained/parking/run-42"
    # -e = original_specs/specs_file
    assert req.spec == f"{BLOB}/specs/detectnet_v2_train_resnet18_kitti.txt"
    # base model = base_model_dir/model_app_name/base_model_subdir
    assert req.base_model.location == f"{BLOB}/models/parking/pretrained_resnet18"
    assert req.base_model.spec_reference == "/workspace/tao-experiments/detectnet_v2/pretrained_resnet18"
    # data = dir/subdir, each with its spec reference
    assert req.training_data.location == f"{BLOB}/data/kitti/training"
    assert req.training_data.spec_reference == "/workspace/tao-experiments/data/training"
    assert req.training_tfrecords.location == f"{BLOB}/tfrecords/kitti_trainval"
    assert req.training_tfrecords.spec_reference.endswith("/kitti_trainval")
    assert req.validation_data.location == f"{BLOB}/data/kitti/val"
    assert req.validation_data.spec_reference == "/workspace/tao-experiments/data/val"
    assert req.validation_tfrecords.location == f"{BLOB}/tfrecords/kitti_val"
    assert req.validation_tfrecords.spec_reference.endswith("/kitti_val")


def test_validation_inputs_are_optional():
    inputs = seed_inputs()
    for name in list(inputs):
        if name.startswith(("validation_", "specfile_reference_validation_")):
            del inputs[name]
    req = TrainRequest.from_component_inputs(inputs)
    assert req.validation_data is None and req.validation_tfrecords is None
    assert set(req.bindings()) == {"training_data", "training_tfrecords", "base_model"}


def test_optional_tao_flags_default_like_tao():
    inputs = seed_inputs()
    for name in ("num_gpus", "gpu_index", "use_amp", "log_file", "name_string_for_the_model", "key"):
        del inputs[name]
    req = TrainRequest.from_component_inputs(inputs)
    assert (req.num_gpus, req.gpu_index, req.use_amp, req.log_file, req.model_name, req.key) == (
        1,
        [],
        False,
        None,
        "model",
        None,
    )


def test_empty_subdir_joins_nothing_and_sas_query_stays_last():
    inputs = seed_inputs(training_data_subdir="", training_data_dir=f"{BLOB}/data?sv=2024&sig=abc")
    req = TrainRequest.from_component_inputs(inputs)
    assert req.training_data.location == f"{BLOB}/data?sv=2024&sig=abc"
    assert join_location(f"{BLOB}/c?sig=x", "a/", "/b") == f"{BLOB}/c/a/b?sig=x"
    assert join_location("/data/", "", "x") == "/data/x"


def test_extras_image_and_docker_gpus():
    req = TrainRequest.from_component_inputs(seed_inputs(image="my/tao:5", docker_gpus="none"))
    assert req.image == "my/tao:5" and req.docker_gpus == "none"
    assert TrainRequest.from_component_inputs(seed_inputs(docker_gpus="2")).docker_gpus == 2


def test_every_problem_is_listed_at_once():
    inputs = seed_inputs(num_epochs="-3", gpu_index="0,-1", num_gpus="2", trainig_data_subdir="x")
    del inputs["training_data_dir"]
    del inputs["specs_file"]
    with pytest.raises(ConfigError) as info:
        TrainRequest.from_component_inputs(inputs)
    err = info.value
    text = err.render()
    codes = [p.code for p in err.problems]
    assert "unknown-field" in codes and "did you mean 'training_data_subdir'" in text
    assert "'training_data_dir' is missing" in text
    assert "'specs_file' is missing" in text
    assert "num_epochs" in text and "greater than or equal to 1" in text
    assert "GPU indices must be >= 0" in text
    assert "how to fix" in text
    assert len(err.problems) >= 5


def test_binding_without_reference_is_an_error():
    inputs = seed_inputs()
    del inputs["specfile_reference_validation_data_dir"]
    with pytest.raises(ConfigError, match="specfile_reference_validation_data_dir"):
        TrainRequest.from_component_inputs(inputs)


def test_reference_without_binding_is_an_error():
    inputs = seed_inputs()
    del inputs["validation_tf_records_dir"]
    with pytest.raises(ConfigError, match="'validation_tf_records_dir' is missing"):
        TrainRequest.from_component_inputs(inputs)


def test_gpu_index_must_match_num_gpus():
    with pytest.raises(ConfigError, match="gpu_index lists 1 GPU"):
        TrainRequest.from_component_inputs(seed_inputs(gpu_index="3", num_gpus="2"))


@pytest.mark.parametrize("value", ["0", 0, "-1", "abc"])
def test_bad_epochs_rejected(value):
    with pytest.raises(ConfigError, match="num_epochs"):
        TrainRequest.from_component_inputs(seed_inputs(num_epochs=value))


def test_key_is_never_printed():
    req = TrainRequest.from_component_inputs(seed_inputs(key="sup3r-s3cret-key"))
    for text in (repr(req), str(req), req.model_dump_json()):
        assert "sup3r-s3cret-key" not in text
    with pytest.raises(ConfigError) as info:
        TrainRequest.from_component_inputs(seed_inputs(key="sup3r-s3cret-key", key_block="tao-key"))
    assert "sup3r-s3cret-key" not in info.value.render()


def test_parse_rejects_unknown_fields_with_suggestion():
    with pytest.raises(ConfigError, match="did you mean 'num_epochs'"):
        TrainRequest.parse({"num_epoch": 3})


def test_errors_survive_pickling():
    # Prefect stores task exceptions by pickling them; the message and fields must survive.
    err = TrainingFailed("training stopped", exit_code=137, reason="out of memory", log_tail=["a", "b"], resumable=True)
    back = pickle.loads(pickle.dumps(err))
    assert back.render() == err.render()
    assert back.container_exit_code == 137 and back.transient is True and back.log_tail == ["a", "b"]
