"""Docker-only promises: GPU runtime missing, unreachable registry, stale containers (dataset_convert on both
launchers: test_standin_convert.py)."""

from __future__ import annotations

import time

import pytest

from tasks.errors import GpuRuntimeMissing, ImageUnavailable, LaunchError
from tasks.launch import DockerLauncher, build_plan, run_training
from tasks.launch.plan import RUN_LABEL
from tasks.launch.slots import Slot
from tests.launch.harness import Recorder, docker_harness, host_memlock_limit


@pytest.fixture
def harness(workdir, docker_client, standin_image):
    return docker_harness(workdir, docker_client, standin_image)


def labelled(client, run_id):
    return client.containers.list(all=True, filters={"label": f"{RUN_LABEL}={run_id}"})


def test_gpu_request_without_nvidia_runtime_is_clear_and_leaves_nothing(harness):
    plan = harness.plan(epochs=2, docker_gpus="all")
    # Run without a booking: the engine is asked for what the request names, every GPU.
    assert harness.launcher.assign_gpus(plan, None).device_requests == ({"count": -1, "capabilities": [["gpu"]]},)
    with pytest.raises(GpuRuntimeMissing) as caught:
        run_training(plan, harness.launcher)
    assert "NVIDIA Container Toolkit" in str(caught.value)
    assert "docker_gpus='none'" in str(caught.value)
    assert labelled(harness.docker_client, plan.run_id) == []  # the created container was removed
    assert not list(plan.results_host_dir.glob("*.ckzip"))  # nothing trained
    result = run_training(plan.with_options(gpus=None), harness.launcher)  # docker_gpus="none"
    assert result.model_path.is_file()


def test_default_ulimits_fall_back_to_the_hosts_limit_on_a_restricted_engine(harness):
    plan = harness.plan(epochs=1)
    default = build_plan(plan.command, slots={Slot.RESULTS: plan.results_host_dir}, run_id="r1", docker_gpus="none")
    assert dict(default.ulimits) == {"memlock": -1, "stack": 67108864}
    assert default.shm_size == "16G" and default.env["TELEMETRY_OPT_OUT"] == "1"
    strict = plan.with_options(ulimits=(("memlock", -1), ("stack", 67108864)))
    seen = Recorder()
    result = run_training(strict, harness.launcher, seen.observer(on_warning=seen.lines.append))
    assert result.model_path.is_file()
    hard = host_memlock_limit()
    if hard == -1:  # an engine host without a memlock cap: NVIDIA's unlimited is simply applied
        assert not any("refused the ulimits" in line for line in seen.lines)
    else:  # like this test machine's dockerd (no CAP_SYS_RESOURCE): the host's hard limit, said once
        warnings = [line for line in seen.lines if "refused the ulimits" in line]
        assert len(warnings) == 1 and f"'memlock': {hard}" in warnings[0] and "DockerOptions.ulimits" in warnings[0]
    assert labelled(harness.docker_client, plan.run_id) == []


def test_the_engines_refusal_is_learned_once_so_a_job_is_created_once(workdir, docker_client, standin_image):
    """The memlock fallback used to create every container twice (refused, then capped): the engine's
    answer is remembered per engine, so after the first refusal each job is one create. (This machine's
    dockerd, like CI's, has no CAP_SYS_RESOURCE: it refuses an unlimited memlock.)"""
    assert host_memlock_limit() != -1, "the test needs an engine that refuses memlock -1, as CI's does"
    for attempt in ("learns", "remembers"):
        harness = docker_harness(workdir / attempt, docker_client, standin_image)
        plan = harness.plan(epochs=1, run_id=f"once-{attempt}-{time.time_ns()}")
        plan = plan.with_options(ulimits=(("memlock", -1), ("stack", 67108864)))
        started = time.time()
        seen = Recorder()
        run_training(plan, harness.launcher, seen.observer(on_warning=seen.lines.append))
        creates = harness.docker_client.events(since=int(started) - 1, until=int(time.time()) + 1, decode=True,
                                               filters={"type": "container", "event": "create",
                                                        "label": f"{RUN_LABEL}={plan.run_id}"})
        count = len(list(creates))
        assert [line for line in seen.lines if "refused the ulimits" in line], attempt  # still said, every time
    assert count == 1, "the second job on the same engine was created more than once"


def test_a_limit_above_what_the_host_allows_even_after_capping_is_explained(harness, monkeypatch):
    import tasks.launch.docker as docker_module

    plan = harness.plan(epochs=1)
    # An engine stricter than this host: even the host's hard limit is refused.
    monkeypatch.setattr(docker_module, "host_capped_ulimits", lambda limits: limits)
    try:
        result = run_training(plan.with_options(ulimits=(("memlock", -1),)), harness.launcher)
    except LaunchError as exc:  # this machine's engine: no CAP_SYS_RESOURCE
        assert "may not apply the ulimits" in str(exc) and "DockerOptions" in str(exc)
    else:  # an engine that may raise the limit simply runs it
        assert result.model_path.is_file()
    assert labelled(harness.docker_client, plan.run_id) == []


def test_unreachable_registry_gives_image_unavailable(docker_client):
    launcher = DockerLauncher(client=docker_client)
    started = time.monotonic()
    with pytest.raises(ImageUnavailable) as caught:
        launcher.ensure_image("127.0.0.1:9/nvidia/tao/tao-toolkit:5.0.0-tf1.15.5")
    assert "could not be pulled" in str(caught.value) and "registry" in str(caught.value)
    assert time.monotonic() - started < 30


def test_stale_containers_of_the_same_run_are_reaped(harness):
    plan = harness.plan(epochs=1)
    stale = harness.docker_client.containers.run(
        harness.image, ["sleep", "300"], detach=True, labels={RUN_LABEL: plan.run_id}, network_mode="none"
    )
    run_training(plan, harness.launcher)
    assert labelled(harness.docker_client, plan.run_id) == []
    with pytest.raises(Exception):
        stale.reload()
