"""Engine-free parts: argv building, the plan's display form, device requests, the tao mounts
file, the status.json follower, the redactor."""

from __future__ import annotations

import json

import pytest

from tasks.errors import ConfigError
from tasks.launch import GpuDemand, StatusLog, build_plan, device_requests, gpu_demand, load_tao_mounts, train_command
from tasks.launch.slots import Slot
from tasks.redact import Redactor


def test_train_argv_is_a_list_with_subtask_first_and_no_log_file():
    command = train_command(model_name="my model", key="k3y-secret", num_gpus=2, gpu_index=[0, 3], use_amp=True,
                            log_file="train.log")
    assert command.argv[:2] == ("detectnet_v2", "train")
    assert command.argv[command.argv.index("-n") + 1] == "my model"  # a space stays inside one argument
    assert command.argv[-4:] == ("--gpu_index", "0", "3", "--use_amp")
    assert "--log_file" not in command.argv and command.log_file == "/workspace/taoflow/results/train.log"
    assert "k3y-secret" not in repr(command) and "-k ***" in " ".join(command.display_argv())
    with pytest.raises(ConfigError):
        train_command(num_gpus=2, gpu_index=[0])


def test_gpu_demand_and_device_requests():
    """What a job books (its num_gpus by default) and, once booked, exactly those GPUs for Docker;
    without a booking, what the request names."""
    assert gpu_demand("none", [], 1) is None and gpu_demand("auto", [], 0) is None
    assert gpu_demand("auto", [], 2) == GpuDemand(2)
    assert gpu_demand("all", [], 1) == GpuDemand(1, every=True)
    assert gpu_demand(3, [], 1) == GpuDemand(3)
    assert gpu_demand("auto", [1, 2], 2) == GpuDemand(2, pinned=(1, 2))
    assert device_requests(None) == ()
    assert device_requests(GpuDemand(1), (3,)) == ({"device_ids": ["3"], "capabilities": [["gpu"]]},)
    assert device_requests(GpuDemand(1, every=True)) == ({"count": -1, "capabilities": [["gpu"]]},)
    assert device_requests(GpuDemand(2)) == ({"count": 2, "capabilities": [["gpu"]]},)
    assert device_requests(GpuDemand(2, pinned=(1, 2))) == ({"device_ids": ["1", "2"], "capabilities": [["gpu"]]},)


def test_plan_renders_without_engine_and_hides_values(tmp_path):
    plan = build_plan(
        train_command(key="abcd-1234-key"),
        slots={Slot.SPEC: tmp_path / "s", Slot.TRAINING_DATA: tmp_path / "d", Slot.RESULTS: tmp_path / "r"},
        run_id="run-42",
        env={"AZURE_STORAGE_CONNECTION_STRING": "AccountKey=verysecretvalue;"},
        docker_gpus="all",
    )
    text = plan.render()
    assert "abcd-1234-key" not in text and "verysecretvalue" not in text
    assert "AZURE_STORAGE_CONNECTION_STRING" in text and "TELEMETRY_OPT_OUT" in text
    assert f"{tmp_path / 'd'} -> /workspace/taoflow/data/training (ro)" in text
    assert f"{tmp_path / 'r'} -> /workspace/taoflow/results (rw)" in text
    assert plan.user and plan.labels["org.taoflow.run-id"] == "run-42"
    assert plan.mounts.host_path("/workspace/taoflow/results/weights/x.hdf5") == tmp_path / "r" / "weights" / "x.hdf5"
    json.dumps(plan.to_dict())


def test_tao_mounts_file_is_imported(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    mounts = tmp_path / "mounts.json"
    mounts.write_text(json.dumps({
        "Mounts": [{"source": str(data), "destination": "/workspace/tao-experiments"}],
        "Envs": [{"variable": "CUDA_CACHE_DISABLE", "value": "1"}],
        "DockerOptions": {"user": "1000:1000", "shm_size": "8G", "ulimits": {"memlock": -1}, "network": "host"},
    }))
    imported = load_tao_mounts(mounts)
    plan = build_plan(train_command(), slots={Slot.RESULTS: tmp_path / "r"}, run_id="r", tao_mounts=imported)
    assert plan.user == "1000:1000" and plan.shm_size == "8G" and plan.network_mode == "host"
    assert plan.env["CUDA_CACHE_DISABLE"] == "1"
    assert any(m.target == "/workspace/tao-experiments" for m in plan.mounts.mounts)


def test_tao_mounts_problems_are_listed_with_the_file(tmp_path):
    mounts = tmp_path / "mounts.json"
    mounts.write_text(json.dumps({"Mounts": [{"source": "/nope/missing", "destination": "/x"}], "Extra": 1,
                                  "DockerOptions": {"gpus": "all"}}))
    with pytest.raises(ConfigError) as caught:
        load_tao_mounts(mounts)
    text = str(caught.value)
    assert "/nope/missing" in text and "'Extra'" in text and "DockerOptions.gpus" in text
    mounts.write_text('{"Mounts": [\n  oops]}')
    with pytest.raises(ConfigError) as caught:
        load_tao_mounts(mounts)
    assert f"{mounts}:2:" in str(caught.value)


def test_status_log_counts_events_not_sticky_dicts(tmp_path):
    status = tmp_path / "status.json"
    status.write_text('{"status": "SUCCESS", "message": "an earlier run"}\n')
    follower = StatusLog(status)
    lines = [
        {"status": "RUNNING", "epoch": 1, "max_epoch": 2, "eta": "0:01", "graphical": {"loss": 0.5, "learning_rate": "1e-4"}},
        {"status": "RUNNING", "message": "Evaluation metrics generated.", "categorical": {"average_precision": {"car": 70.5}},
         "kpi": {"mean average precision": 70.5, "validation cost": 0.1}},
        {"status": "RUNNING", "message": "Saving trained model.", "kpi": {"mean average precision": 70.5}},
    ]
    with status.open("a") as handle:
        handle.write(json.dumps(lines[0]) + "\n" + json.dumps(lines[1]) + "\n" + json.dumps(lines[2])[:20])
    events = follower.poll()
    assert [type(e).__name__ for e in events] == ["EpochEvent", "ValidationEvent"]
    # The validation after epoch line 1 validated the epoch that line opened (zero-based reading)
    # or the next one (one-based): either way the second epoch.
    assert events[1].epoch == 2 and events[1].average_precision == {"car": 70.5}
    with status.open("a") as handle:
        handle.write(json.dumps(lines[2])[20:] + "\nnot json\n")
    assert follower.poll() == [] and follower.last_message == "Saving trained model."
    assert len(follower.records) == 3  # this launch's lines; the earlier run's line is history
    assert [len(s.records) for s in follower.sessions] == [1, 3]


def test_redactor_masks_given_secrets_and_credential_shapes():
    redact = Redactor(["tlt_encode_key", "AccountName=a;AccountKey=c2VjcmV0a2V5c2VjcmV0a2V5;EndpointSuffix=x"])
    text = redact("key tlt_encode_key, key alone c2VjcmV0a2V5c2VjcmV0a2V5, url https://a.blob.core.windows.net/c?sp=r&sig=abc%2Bdef")
    assert "tlt_encode_key" not in text and "c2VjcmV0a2V5" not in text and "abc%2Bdef" not in text
    assert "https://a.blob.core.windows.net/c?sp=r&sig=***" in text
