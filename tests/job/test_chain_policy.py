"""The request's `chain` section (typed, described: the Prefect UI form), its gates, and the artifact facts
a model card gets (size, SHA-256, parameters) read without following links."""

from __future__ import annotations

import hashlib
import json
import os

import pytest
from pydantic import ValidationError

from tasks.errors import LaunchError
from tasks.job.chain_gates import choose_candidate, pruning_gate
from tasks.job.chain_policy import ChainPolicy, EnginePolicy, PrunePolicy
from tasks.launch import artifact_facts, export_command, gen_trt_engine_command, prune_command


def test_everything_is_off_until_asked_for_and_the_defaults_are_the_notebooks():
    policy = ChainPolicy()
    assert not policy.enabled
    prune = policy.prune.options()
    assert (prune.threshold, prune.equalization, prune.normalizer, prune.granularity, prune.min_num_filters) == (
        5.2e-6, "union", "max", 8, 16)
    assert (policy.export.gen_ds_config, policy.export.onnx_route, policy.export.data_type) == (True, "tf2onnx", "fp32")
    assert (policy.engine.data_type, policy.engine.batch_sizes().max) == ("int8", 64)
    calibration = policy.export.calibration.settings("/r/calibration.bin")
    assert (calibration.batches, calibration.batch_size) == (10, 4)


def test_every_field_is_described_for_the_ui_form_and_the_example_validates():
    schema = ChainPolicy.model_json_schema()

    def undescribed(properties: dict, where: str) -> list[str]:
        return [f"{where}.{name}" for name, spec in properties.items() if not spec.get("description")]

    missing = undescribed(schema["properties"], "chain")
    for name, definition in schema.get("$defs", {}).items():
        missing += undescribed(definition.get("properties", {}), name)
    assert missing == []
    for example in schema["examples"]:
        assert ChainPolicy.model_validate(example).engine.enabled
    json.dumps(schema)  # what Prefect stores


@pytest.mark.parametrize(("fields", "words"), [
    ({"engine": {"enabled": True}}, "tao_deploy_image"),
    ({"export": {"enabled": False}, "engine": {"enabled": True, "tao_deploy_image": "tao:deploy"}}, "export.enabled"),
    ({"min_pruning_ratio": 0.9, "max_pruning_ratio": 0.5}, "must be below"),
    ({"engine": {"min_batch_size": 8, "opt_batch_size": 4}}, "must grow"),
    ({"prune": {"equalization": "median"}}, "equalization"),
    ({"prune": {"threshold": -1}}, "threshold"),
    ({"max_map_drop_after_prune": 101}, "max_map_drop_after_prune"),
    ({"prune": {"enabled": True, "pth": 0.01}}, "pth"),
])
def test_a_wrong_chain_section_says_what_is_wrong(fields, words):
    with pytest.raises(ValidationError) as caught:
        ChainPolicy.model_validate(fields)
    assert words in str(caught.value)


def test_the_policy_builds_commands_the_builders_accept():
    policy = ChainPolicy.model_validate({"prune": {"enabled": True, "threshold": 0.01, "excluded_layers": ["conv1"]},
                                         "export": {"enabled": True, "data_type": "int8"},
                                         "engine": {"enabled": True, "tao_deploy_image": "tao:deploy"}})
    assert policy.reuse_export_calibration
    pruned = prune_command(model="/m/a.hdf5", output="/r/p.hdf5", results_dir="/r", options=policy.prune.options())
    assert pruned.argv[pruned.argv.index("-pth") + 1] == "0.01" and pruned.argv[-2:] == ("-el", "conv1")
    exported = export_command(model="/m/a.hdf5", output="/x/a.onnx", spec="/s.txt", results_dir="/x",
                              onnx_route=policy.export.onnx_route, data_type=policy.export.data_type,
                              engine_file="/x/a.trt", calibration=policy.export.calibration.settings("/x/cal.bin"))
    engine = gen_trt_engine_command(model="/x/a.onnx", spec="/s.txt", results_dir="/e", engine_file="/e/a.engine",
                                    data_type=policy.engine.data_type, batch_sizes=policy.engine.batch_sizes(),
                                    calibration=policy.export.calibration.settings("/x/cal.bin", reuse=True))
    assert "/x/cal.bin" in exported.outputs and "/x/cal.bin" not in engine.outputs


def test_the_pruning_gate_passes_inside_the_bounds_and_says_which_way_out():
    policy = ChainPolicy(min_pruning_ratio=0.2, max_pruning_ratio=0.8)
    inside = pruning_gate(policy, 0.28675465541756007)
    assert inside.passed and "28.7%" in inside.message
    low, high = pruning_gate(policy, 0.1), pruning_gate(policy, 0.95)
    assert not low.passed and "lower chain.prune.threshold" in low.message
    assert not high.passed and "raise chain.prune.threshold" in high.message
    assert pruning_gate(policy, 0.2).passed and pruning_gate(policy, 0.8).passed  # the bounds are inclusive
    for nonsense in (float("nan"), 0.0, -0.5, float("inf"), True):
        assert not pruning_gate(policy, nonsense).passed


def test_the_candidate_is_the_unpruned_model_when_pruning_cost_too_much():
    policy = ChainPolicy(max_map_drop_after_prune=2.0)
    kept = choose_candidate(policy, unpruned_map=79.5, pruned_map=79.0)
    assert kept.candidate == "pruned" and kept.map_drop == pytest.approx(0.5)
    assert kept.message.startswith("pruning cost 0.50 points of mAP (79.50 -> 79.00)")
    dropped = choose_candidate(policy, unpruned_map=79.5, pruned_map=74.5)
    assert dropped.candidate == "unpruned" and "pruning cost 5.00 points" in dropped.message
    assert choose_candidate(policy, 79.5, 77.5).candidate == "pruned"  # exactly the allowance
    gained = choose_candidate(policy, 70.0, 71.25)
    assert gained.candidate == "pruned" and "pruning gained 1.25 points" in gained.message


def test_engine_policy_alone_names_the_image_when_enabled():
    assert EnginePolicy(enabled=True, tao_deploy_image="nvcr.io/nvidia/tao/tao-toolkit:5.5.0-deploy").enabled
    assert PrunePolicy().enabled is False


# --- artifact facts ------------------------------------------------------------------------------


def test_artifact_facts_hash_the_file_itself(tmp_path):
    data = os.urandom(3 * (1 << 20) + 17)  # more than one read
    (tmp_path / "m.onnx").write_bytes(data)
    facts = artifact_facts(tmp_path / "m.onnx", param_count=3.212519)
    assert (facts.size_bytes, facts.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert facts.to_dict()["size_mb"] == len(data) / (1 << 20) and facts.param_count == 3.212519


def test_artifact_facts_never_follow_a_link_or_open_a_fifo(tmp_path):
    (tmp_path / "secret").write_text("host file\n")
    (tmp_path / "m.onnx").symlink_to(tmp_path / "secret")
    os.mkfifo(tmp_path / "m.engine")
    for name in ("m.onnx", "m.engine", "missing.hdf5"):
        with pytest.raises(LaunchError) as caught:
            artifact_facts(tmp_path / name)
        assert caught.value.where == str(tmp_path / name)
