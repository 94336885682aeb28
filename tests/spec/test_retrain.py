"""The retrain spec, derived as NVIDIA's differs from its train spec: NVIDIA's own retrain spec
(tao_tutorials 5.5) comes out of NVIDIA's own train spec, byte for byte but the trailing blanks of its last
line, and NVIDIA's parser (`_pb2` + `text_format.Merge`) reads `load_graph: true` and the pruned model."""

from __future__ import annotations

import pytest

from tasks.errors import SpecError
from tasks.spec import parse_spec, retrain_spec
from tests.spec._specs import spec_bytes, spec_text
from tests.spec.tao_protos import tao_read

TRAIN = "tao_tutorials_5.5__detectnet_v2_train_resnet18_kitti.txt"
RETRAIN = "tao_tutorials_5.5__detectnet_v2_retrain_resnet18_kitti.txt"
PRUNED = "/workspace/tao-experiments/detectnet_v2/experiment_dir_pruned/resnet18_nopool_bn_detectnet_v2_pruned.hdf5"


def test_nvidias_retrain_spec_comes_out_of_nvidias_train_spec():
    result = retrain_spec(parse_spec(spec_text(TRAIN), file="train.txt"), PRUNED)
    # NVIDIA's file ends "}  " without a newline; ours keeps the train spec's "}\n".
    assert result.text.rstrip() == spec_text(RETRAIN).rstrip()
    assert [c.field for c in result.changes] == [
        "model_config.pretrained_model_file", "model_config.load_graph",
        "training_config.visualizer.clearml_config.tags[3]", "training_config.visualizer.wandb_config.tags[3]"]


def test_nvidias_parser_reads_the_derived_spec_as_nvidias_retrain_spec():
    derived = retrain_spec(parse_spec(spec_text(TRAIN)), PRUNED).text.encode()
    mine, theirs = tao_read(derived, "train"), tao_read(spec_bytes(RETRAIN), "train")
    assert mine.ok and theirs.ok
    assert mine.message.model_config.load_graph is True
    assert mine.message.model_config.pretrained_model_file == PRUNED
    assert mine.serialized == theirs.serialized
    # ...and the regularizer, the schedule and the epochs are the train spec's
    train = tao_read(spec_bytes(TRAIN), "train").message
    for name in ("regularizer", "learning_rate", "num_epochs", "batch_size_per_gpu", "optimizer", "cost_scaling"):
        assert getattr(mine.message.training_config, name) == getattr(train.training_config, name), name
    assert mine.message.cost_function_config == train.cost_function_config


@pytest.mark.parametrize(("train", "expected"), [
    # load_graph written false: set where it is
    ('model_config {\n  load_graph: false\n  num_layers: 18\n}\n',
     'model_config {\n  load_graph: true\n  num_layers: 18\n  pretrained_model_file: "/r/p.hdf5"\n}\n'),
    # no model_config at all: both added in the file's style
    ('training_config {\n  num_epochs: 3\n}\n',
     'training_config {\n  num_epochs: 3\n}\nmodel_config {\n  pretrained_model_file: "/r/p.hdf5"\n'
     '  load_graph: true\n}\n'),
    # a block first: load_graph goes after the last field
    ('model_config {\n  objective_set {\n    cov {\n    }\n  }\n}\n',
     'model_config {\n  objective_set {\n    cov {\n    }\n  }\n  pretrained_model_file: "/r/p.hdf5"\n'
     '  load_graph: true\n}\n'),
])
def test_specs_unlike_nvidias_get_the_same_three_things(train, expected):
    result = retrain_spec(parse_spec(train), "/r/p.hdf5")
    assert result.text == expected
    message = tao_read(result.text.encode(), "train").message
    assert message.model_config.load_graph is True and message.model_config.pretrained_model_file == "/r/p.hdf5"


def test_every_other_byte_stays_crlf_and_comments_included():
    train = ('# my spec\r\nmodel_config {\r\n  pretrained_model_file: "/w/base.hdf5"  # the base\r\n'
             '  num_layers: 18\r\n  arch: "resnet"\r\n}\r\n')
    text = retrain_spec(parse_spec(train), "/r/p.hdf5").text
    assert text == ('# my spec\r\nmodel_config {\r\n  pretrained_model_file: "/r/p.hdf5"  # the base\r\n'
                    '  num_layers: 18\r\n  arch: "resnet"\r\n  load_graph: true\r\n}\r\n')


def test_tags_other_than_unpruned_stay():
    train = ('model_config {\n  num_layers: 18\n}\ntraining_config {\n  visualizer {\n    wandb_config {\n'
             '      name: "x"\n      tags: "unpruned-ish"\n      tags: "resnet18"\n    }\n  }\n}\n')
    result = retrain_spec(parse_spec(train), "/r/p.hdf5")
    assert 'tags: "unpruned-ish"' in result.text and 'tags: "pruned"' not in result.text


def test_a_pruned_model_that_is_no_hdf5_and_a_convert_spec_are_refused():
    with pytest.raises(SpecError):
        retrain_spec(parse_spec(spec_text(TRAIN)), "/r/pruned.tlt")
    with pytest.raises(SpecError):
        retrain_spec(parse_spec('kitti_config { root_directory_path: "/d" }', kind="dataset_convert"), "/r/p.hdf5")
