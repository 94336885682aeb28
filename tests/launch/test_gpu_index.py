"""GPU numbering (tao-source-facts.md §3): host GPUs go to Docker's device request; inside the
container they are renumbered from 0, and TAO's wrapper refuses an index it cannot see."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.errors import TrainingFailed
from tasks.launch import DockerLauncher, GpuDemand, ProcessLauncher, run_training
from tasks.launch.judge import GPUS_NOT_VISIBLE
from tests.launch.harness import docker_harness, plan_from_request


def planned(tmp_path: Path, gpu_index: list[int], launcher: str = "docker"):
    return plan_from_request(tmp_path, num_gpus=len(gpu_index), gpu_index=gpu_index, launcher=launcher)


def gpu_flags(argv: tuple[str, ...]) -> list[str]:
    return list(argv[argv.index("--gpus"):])


@pytest.mark.parametrize(("host", "inside"), [([1], ["0"]), ([2, 3], ["0", "1"])])
def test_host_gpus_go_to_the_device_request_and_tao_counts_from_zero(tmp_path, host, inside):
    plan = planned(tmp_path, host)
    assert plan.gpus == GpuDemand(len(host), pinned=tuple(host))
    requested = ({"device_ids": [str(i) for i in host], "capabilities": [["gpu"]]},)
    # Booked (exactly these, the request pins them) or not (the request's own), the same device request.
    assert DockerLauncher().assign_gpus(plan, tuple(host)).device_requests == requested
    assert DockerLauncher().assign_gpus(plan, None).device_requests == requested
    assert gpu_flags(plan.command.argv) == ["--gpus", str(len(host)), "--gpu_index", *inside]


def test_a_process_in_the_tao_image_sees_the_hosts_numbering(tmp_path):
    plan = planned(tmp_path, [2, 3], launcher="process")
    assert gpu_flags(plan.command.argv) == ["--gpus", "2", "--gpu_index", "2", "3"]
    booked = ProcessLauncher().assign_gpus(plan, (2, 3))
    assert gpu_flags(booked.command.argv) == ["--gpus", "2", "--gpu_index", "2", "3"]
    assert booked.env["CUDA_VISIBLE_DEVICES"] == "2,3"


@pytest.mark.services
def test_tao_refuses_host_numbers_inside_the_container_and_that_is_final(workdir, docker_client, standin_image):
    """The stand-in's wrapper does TAO's check against the GPUs the container sees (two here, as a
    device request for host GPUs 2 and 3 gives): `--gpu_index 0 1` trains, `2 3` fails at once."""
    harness = docker_harness(workdir, docker_client, standin_image)
    seen_gpus = {"TAO_STANDIN_VISIBLE_GPUS": "2", "TAO_STANDIN_EPOCH_SECONDS": "0.02"}
    good = harness.plan(epochs=2, gpu_index=(0, 1), run_id="gpus-good")
    result = run_training(good.with_options(env=dict(good.env, **seen_gpus)), harness.launcher)
    assert result.completed_epochs == 2

    harness = docker_harness(workdir / "bad", docker_client, standin_image)
    bad = harness.plan(epochs=2, gpu_index=(2, 3), run_id="gpus-bad")
    with pytest.raises(TrainingFailed) as caught:
        run_training(bad.with_options(env=dict(bad.env, **seen_gpus)), harness.launcher)
    assert caught.value.reason == GPUS_NOT_VISIBLE and not caught.value.transient
    assert "Checking for valid GPU ids and num_gpus" in caught.value.tao_error
