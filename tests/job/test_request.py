"""TrainRequest and the seed component's flat inputs: every name, every mapping rule, every error."""

from __future__ import annotations

import pickle

import pytest

from tasks.errors import ConfigError, TrainingFailed
from tasks.job.component_inputs import COMPONENT_INPUTS
from tasks.job.request import TrainRequest, join_location

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


# --- outputs stay under their prefix (issue 15, item 3) --------------------------------------

#: Names that would leave OUTPUT/APP/SUBFOLDER, cut a URL (#), replace its SAS (?), or be a flag to TAO.
HOSTILE_NAMES = ["..", ".", "../..", "a/b", "/abs", "a\\b", "#frag", "x#y", "?sv=2024&sig=evil", "x?y", " ",
                 "a b", "-n", ".hidden", "", "x" * 201, "naïve", "a\nb", "a\x00b", "run-1\n"]
NAME_FIELDS = ["model_app_name", "model_subfolder", "model_name", "log_file"]


def request_fields(**overrides):
    fields = {
        "model_app_name": "parking", "num_epochs": 3, "spec": f"{BLOB}/specs/train.txt",
        "training_data": {"location": f"{BLOB}/data/train", "spec_reference": "/ws/data"},
        "training_tfrecords": {"location": f"{BLOB}/tfr", "spec_reference": "/ws/tfr"},
        "base_model": {"location": f"{BLOB}/models/base", "spec_reference": "/ws/base"},
        "output": f"{BLOB}/trained?sv=2024-08-04&sig=realsig", "model_subfolder": "run-42",
    }
    return fields | overrides


@pytest.mark.parametrize("field", NAME_FIELDS)
@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_output_names_are_single_safe_path_components(field, name):
    with pytest.raises(ConfigError) as info:
        TrainRequest.parse(request_fields(**{field: name}))
    text = info.value.render()
    assert field in text and "A-Z a-z 0-9 . _ -" in text, text  # the message states the allowed characters
    assert "realsig" not in text


@pytest.mark.parametrize("name", ["a..b", "v1.2", "run_7-x", "A" * 200, "incoming-kitti-0412-20261125T020000Z"])
def test_accepted_names_keep_the_results_under_output_app_subfolder(name):
    req = TrainRequest.parse(request_fields(model_app_name=name, model_subfolder=name, model_name=name))
    assert req.results_location == f"{BLOB}/trained/{name}/{name}?sv=2024-08-04&sig=realsig"


@pytest.mark.parametrize("name", [n for n in HOSTILE_NAMES if n.strip()])  # blank inputs count as missing
def test_component_inputs_refuse_the_same_names(name):
    for field in ("model_app_name", "model_subfolder", "name_string_for_the_model"):
        with pytest.raises(ConfigError, match="A-Z a-z 0-9"):
            TrainRequest.from_component_inputs(seed_inputs(**{field: name}))


@pytest.mark.parametrize("subdir", ["..", "../secrets", "a/../../b", "kitti?sv=1&sig=x", "kitti#x", "a\\b", "a\x01b"])
def test_component_subdirs_that_would_leave_their_folder_are_refused(subdir):
    with pytest.raises(ConfigError) as info:
        TrainRequest.from_component_inputs(seed_inputs(training_data_subdir=subdir, specs_file=subdir))
    problems = {p.code: p.message for p in info.value.problems}
    assert "unsafe-path" in problems
    assert any("training_data_subdir" in p.message for p in info.value.problems)
    assert any("specs_file" in p.message for p in info.value.problems)


def test_join_location_refuses_parts_that_change_the_location():
    for part in ("..", "a/../b", "x?sig=1", "x#y", "a\\b"):
        with pytest.raises(ConfigError):
            join_location(f"{BLOB}/trained?sv=1&sig=s3cr3tsig", part)
    with pytest.raises(ConfigError) as info:
        join_location(f"{BLOB}/trained?sv=1&sig=s3cr3tsig", "..")
    assert "s3cr3tsig" not in info.value.render()
    assert join_location("/out", "app", "run") == "/out/app/run"


# --- what a deployment's schema lets through (issue 15, item 5) -------------------------------


def test_the_json_schema_has_no_key_and_refuses_urls_with_a_query():
    from prefect.utilities.schema_tools.validation import ValidationError, validate

    schema = {"type": "object", "properties": {"request": {"$ref": "#/definitions/TrainRequest"}},
              "definitions": TrainRequest.model_json_schema(ref_template="#/definitions/{model}")["$defs"]
              | {"TrainRequest": {k: v for k, v in TrainRequest.model_json_schema(
                  ref_template="#/definitions/{model}").items() if k != "$defs"}}}
    props = schema["definitions"]["TrainRequest"]["properties"]
    assert "key" not in props and "key_block" in props and "TAO_KEY" in props["key_block"]["description"]
    good = request_fields(output=f"{BLOB}/trained")
    validate({"request": good}, schema, raise_on_error=True)
    with pytest.raises(ValidationError, match="key_block"):  # the refusal says how to store the key
        validate({"request": good | {"key": "abc"}}, schema, raise_on_error=True)
    for field in ("spec", "output"):
        with pytest.raises(ValidationError, match=field):
            validate({"request": good | {field: f"{BLOB}/c/p?sv=1&sig=abc"}}, schema, raise_on_error=True)
    bad = good | {"training_data": {"location": f"{BLOB}/d#frag", "spec_reference": "/ws"}}
    with pytest.raises(ValidationError, match="training_data"):
        validate({"request": bad}, schema, raise_on_error=True)
    for name in HOSTILE_NAMES[:10]:
        with pytest.raises(ValidationError):
            validate({"request": good | {"model_subfolder": name}}, schema, raise_on_error=True)


def test_in_process_requests_still_take_a_key_and_a_sas_but_never_dump_the_key():
    req = TrainRequest.parse(request_fields(key="abc"))
    assert req.key.get_secret_value() == "abc"
    dumped = req.model_dump(mode="json")
    assert "key" not in dumped and "key" not in req.model_dump()
    assert dumped["output"] == f"{BLOB}/trained?sv=2024-08-04&sig=***"
    assert req.output.endswith("sig=realsig")
