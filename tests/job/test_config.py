"""Config files: both forms told apart, --set, relative paths, keys, errors that point at lines."""

from __future__ import annotations

import textwrap

import pytest

from tasks.errors import ConfigError
from tasks.job.config import load_config

REQUEST_YAML = """\
model_app_name: shapes
num_epochs: 3
spec: specs/train.txt
training_data:
  location: data/shapes
  spec_reference: /workspace/tao-experiments/data/shapes
training_tfrecords:
  location: https://acct.blob.core.windows.net/tfr/shapes?sig=abc
  spec_reference: /workspace/tao-experiments/data/tfrecords/shapes_trainval
base_model:
  location: ~/models/resnet18
  spec_reference: /workspace/tao-experiments/pretrained/resnet18
output: out
model_subfolder: run-1
docker_gpus: none
"""


def write(tmp_path, text, name="job.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_request_form_with_relative_paths_resolved(tmp_path, monkeypatch):
    monkeypatch.delenv("TAO_KEY", raising=False)
    loaded = load_config(write(tmp_path, REQUEST_YAML))
    req = loaded.request
    assert loaded.form == "request" and loaded.warnings == []
    assert req.spec == str(tmp_path / "specs/train.txt")
    assert req.training_data.location == str(tmp_path / "data/shapes")
    assert req.output == str(tmp_path / "out")
    assert req.training_tfrecords.location.startswith("https://")  # URLs untouched
    assert not req.base_model.location.startswith("~")  # ~ expanded
    assert req.key is None


def test_component_form_detected(tmp_path):
    text = """\
    model_app_name: shapes
    num_epochs: 2
    training_data_dir: /data
    training_data_subdir: shapes
    specfile_reference_training_data_dir: /workspace/tao-experiments/data/shapes
    training_tf_records_dir: /tfr
    training_tf_records_subdir: shapes
    specfile_reference_training_tf_records_dir: /workspace/tao-experiments/data/tfrecords/shapes_trainval
    base_model_dir: /models
    base_model_subdir: resnet18
    specfile_reference_model_dir: /workspace/tao-experiments/pretrained/resnet18
    original_specs: /specs
    specs_file: train.txt
    model_subfolder: run-1
    trained_model_dir: /out
    """
    loaded = load_config(write(tmp_path, text))
    assert loaded.form == "component"
    assert loaded.request.base_model.location == "/models/shapes/resnet18"
    assert loaded.request.results_location == "/out/shapes/run-1"


def test_set_overrides_and_key_from_env(tmp_path):
    loaded = load_config(
        write(tmp_path, REQUEST_YAML),
        ["num_epochs=7", "training_data.location=/elsewhere", "use_amp=true"],
        env={"TAO_KEY": "from-env"},
    )
    req = loaded.request
    assert req.num_epochs == 7 and req.use_amp is True
    assert req.training_data.location == "/elsewhere"
    assert req.key.get_secret_value() == "from-env"


def test_plaintext_key_warns(tmp_path):
    loaded = load_config(write(tmp_path, REQUEST_YAML + "key: tlt_encode\n"), env={})
    assert any("plain text" in w for w in loaded.warnings)
    assert all("tlt_encode" not in w for w in loaded.warnings)


def test_field_errors_point_at_their_line(tmp_path):
    bad = REQUEST_YAML.replace("num_epochs: 3", "num_epochs: -3").replace("docker_gpus: none", "docker_gpu: none")
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, bad), env={})
    by_code = {p.code: p for p in info.value.problems}
    assert by_code["invalid-field"].line == 2
    assert by_code["unknown-field"].line == 15 and "docker_gpus" in by_code["unknown-field"].hint
    assert f"{tmp_path}/job.yaml:2" in info.value.render()


def test_yaml_syntax_error_has_line_and_column(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, "model_app_name: x\nnum_epochs: [3\n"), env={})
    assert info.value.where.startswith(f"{tmp_path}/job.yaml:")


@pytest.mark.parametrize("content, message", [("", "is empty"), ("- a\n- b\n", "must be a mapping")])
def test_not_a_mapping(tmp_path, content, message):
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, content), env={})


def test_missing_file_and_bad_set(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="FIELD=VALUE"):
        load_config(write(tmp_path, REQUEST_YAML), ["num_epochs"])


def test_env_key_only_when_the_request_names_no_key_and_no_block(tmp_path):
    from tasks.job.config import with_env_key

    env = {"TAO_KEY": "from-env"}
    assert load_config(write(tmp_path, REQUEST_YAML + "key_block: tao-key\n"), env=env).request.key is None
    in_file = load_config(write(tmp_path, REQUEST_YAML + "key: in-file\n"), env=env).request
    assert in_file.key.get_secret_value() == "in-file"
    # A deployment run's request (no key, no block) takes the worker's TAO_KEY, in memory only.
    bare = load_config(write(tmp_path, REQUEST_YAML), env={}).request
    keyed = with_env_key(bare, env)
    assert keyed.key.get_secret_value() == "from-env" and "from-env" not in keyed.model_dump_json()
    assert with_env_key(bare, {}).key is None


def test_output_names_that_leave_the_output_folder_point_at_their_line(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, REQUEST_YAML.replace("model_subfolder: run-1", "model_subfolder: ../../etc")), env={})
    [problem] = info.value.problems
    assert problem.line == REQUEST_YAML.splitlines().index("model_subfolder: run-1") + 1
    assert "A-Z a-z 0-9 . _ -" in problem.message
