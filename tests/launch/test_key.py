"""The key goes to TAO only when TAO needs it (tao-source-facts.md §2): a .tlt pretrained model, a
pre-5.0 checkpoint to resume from, an image older than TAO 5. Elsewhere it is in no argv."""

from __future__ import annotations

import pytest

from tasks.errors import ConfigError
from tests.launch.harness import DEMO_SPEC, plan_from_request

KEY = "tlt_encode"


def tlt_spec(tmp_path) -> str:
    """The demo spec with a .tlt pretrained model, as TAO 4 era specs have it."""
    spec = tmp_path / "tlt_spec.txt"
    spec.write_text(DEMO_SPEC.read_text().replace("resnet18/resnet18.hdf5", "resnet18/resnet18.tlt"))
    return str(spec)


def test_tao_5_with_an_hdf5_model_gets_no_key(tmp_path):
    plan = plan_from_request(tmp_path, key=KEY)
    assert "-k" not in plan.command.argv and KEY not in " ".join(plan.command.argv)
    assert "key:      not passed" in plan.render()


def test_a_tlt_model_gets_the_key_and_says_why(tmp_path):
    plan = plan_from_request(tmp_path, key=KEY, spec=tlt_spec(tmp_path))
    argv = plan.command.argv
    assert argv[argv.index("-k") + 1] == KEY
    assert "key:      passed as -k: the pretrained model resnet18.tlt is encrypted" in plan.render()
    assert KEY not in plan.render()


def test_a_tlt_model_without_a_key_is_a_config_error_before_launch(tmp_path):
    with pytest.raises(ConfigError) as caught:
        plan_from_request(tmp_path, spec=tlt_spec(tmp_path))
    assert "resnet18.tlt is encrypted" in str(caught.value) and "key_block" in str(caught.value)


def test_an_image_older_than_tao_5_gets_the_key(tmp_path):
    plan = plan_from_request(tmp_path, key=KEY, image="nvcr.io/nvidia/tao/tao-toolkit:4.0.1-tf1.15.5")
    assert "-k" in plan.command.argv


def test_resuming_a_pre_5_checkpoint_gets_the_key_a_zip_does_not(tmp_path):
    results = tmp_path / "run" / "results"
    results.mkdir(parents=True)
    (results / "model.epoch-2.ckzip").write_bytes(b"PK\x03\x04 a plain zip, as TAO 5 writes it")
    assert "-k" not in plan_from_request(tmp_path, key=KEY).command.argv
    (results / "model.epoch-4.ckzip").write_bytes(b"\x8a\x01 encrypted by TAO 4")
    plan = plan_from_request(tmp_path, key=KEY)
    assert "-k" in plan.command.argv and "model.epoch-4.ckzip was written encrypted" in plan.command.key_reason
