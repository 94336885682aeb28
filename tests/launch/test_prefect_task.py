"""The Prefect wrapper on a real Prefect API: run-logger lines, progress and metrics artifacts,
and a crash retried by Prefect that resumes from the checkpoint."""

from __future__ import annotations

import json
import time

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, LogFilter, LogFilterFlowRunId

from tasks.launch.launch_tasks import train_detectnet_v2
from tests.launch.harness import docker_harness, process_harness


@pytest.fixture(params=["docker", "process"])
def harness(request, workdir, prefect_api):
    if request.param == "docker":
        return docker_harness(workdir, request.getfixturevalue("docker_client"), request.getfixturevalue("standin_image"))
    return process_harness(workdir)


def read_back(flow_run_id, last_line: str):
    # Run logs travel to the API in batches: wait (briefly) until the last line has arrived.
    deadline = time.monotonic() + 20
    with get_client(sync_client=True) as client:
        while True:
            logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
            messages = [log.message for log in logs]
            if last_line in messages or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
    return artifacts, messages


def test_artifacts_and_logs_with_a_retried_crash(harness):
    key = "tlt-KEY-prefect-77aa"
    plan = harness.plan(epochs=4, key=key)
    plan = plan.with_options(env=dict(plan.env, TAO_STANDIN_FAIL_AT_EPOCH="3", TAO_STANDIN_FAIL_ONCE="1"))
    task = train_detectnet_v2.with_options(retry_delay_seconds=0)

    @flow
    def train_flow():
        from prefect.runtime import flow_run

        return flow_run.id, task(plan, harness.launcher, artifact_prefix="unit-test")

    flow_run_id, result = train_flow()
    results = plan.results_host_dir
    assert (results / "standin_starts.txt").read_text().split() == ["started_from_epoch=0", "started_from_epoch=2"]
    assert result.model_path.is_file()

    artifacts, messages = read_back(flow_run_id, "Execution status: PASS")
    by_key: dict[str, list] = {}
    for artifact in artifacts:
        by_key.setdefault(artifact.key, []).append(artifact)
    assert {"unit-test-progress", "unit-test-epochs", "unit-test-metrics"} <= set(by_key)
    progress = max(by_key["unit-test-progress"], key=lambda a: a.updated)
    # 100 % although TAO's last epoch line says 3 of 4: complete is decided by the checkpoints.
    assert float(progress.data) == pytest.approx(100.0)
    assert progress.description == "complete: 4 of 4 epochs, final mAP 65.00 %"
    latest_epochs = max(by_key["unit-test-epochs"], key=lambda a: a.created)
    latest_metrics = max(by_key["unit-test-metrics"], key=lambda a: a.created)
    epoch_rows = json.loads(latest_epochs.data)
    metric_rows = json.loads(latest_metrics.data)
    assert [row["epoch"] for row in epoch_rows] == [2, 3]  # the successful attempt's epoch lines
    # One row per validation in the results folder, each at the epoch it validated: the first
    # attempt's (after epoch 1) and the resumed one's (3, and the last epoch).
    assert [row["epoch"] for row in metric_rows] == [1, 3, 4]
    assert metric_rows[0]["AP car (%)"] is not None and metric_rows[0]["mAP (%)"] is not None
    assert any("Epoch 3/4: loss:" in m for m in messages)
    assert any("injected failure in epoch 3" in m for m in messages)  # the first attempt's log
    everything = "\n".join(messages) + "\n".join(str(a.data) + str(a.description) for a in artifacts)
    assert key not in everything and "-k ***" in everything
