"""The training flow against real Azurite, dockerd and the Prefect API: blob to published model,
failing before any container on bad data, surviving a storage outage and a trainer crash, and
transferring nothing and reusing the cached validation on an unchanged re-run."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

from flows.train import train_detectnet_v2
from tasks.errors import DatasetError
from tasks.job.request import TrainRequest
from tests.flow.conftest import request_fields
from tests.flow.test_flow_local import artifacts_of

pytestmark = pytest.mark.services

MARKER = "_taoflow_published.json"


def blob_request(base: str, image: str, **extra) -> TrainRequest:
    fields = request_fields(base, tfrecords=f"{base}/tfrecords/shapes", output=f"{base}/models", image=image, **extra)
    fields["spec"] = f"{base}/specs/train.txt"
    return TrainRequest(**fields)


def task_runs(flow_run_id):
    with get_client(sync_client=True) as client:
        return client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))


def test_blob_to_published_model_with_artifacts(prefect_api, engine_env, blob_dataset, blob_container):
    image = engine_env()
    state = train_detectnet_v2(blob_request(blob_dataset, image), return_state=True)
    assert state.is_completed(), state.message
    result = state.result()
    names = {b.name for b in blob_container.list_blobs(name_starts_with="models/shapes/run-1/")}
    prefix = "models/shapes/run-1/"
    assert {prefix + "weights/shapes_detector.hdf5", prefix + "status.json", prefix + MARKER} <= names
    assert result.model_location.endswith("/models/shapes/run-1/weights/shapes_detector.hdf5")
    # TFRecords were converted and published beside the data, readable by the next run
    tfr = {b.name for b in blob_container.list_blobs(name_starts_with="tfrecords/shapes/")}
    assert any("-fold-000-of-002" in n for n in tfr) and "tfrecords/shapes/" + MARKER in tfr
    arts = artifacts_of(state.state_details.flow_run_id)
    assert {"train-summary", "dataset-validation", "trained-model", "detectnet-v2-progress",
            "detectnet-v2-metrics", "detectnet-v2-epochs"} <= set(arts)
    assert "weights/shapes_detector.hdf5" in arts["trained-model"].data


def test_bad_dataset_fails_before_any_container(prefect_api, engine_env, demo_data, tmp_path, docker_client):
    image = engine_env()
    data = tmp_path / "data" / "shapes"
    import shutil

    shutil.copytree(demo_data / "data" / "shapes", data)
    label = data / "label_2" / "000003.txt"
    # A NaN box corner: TAO's dataset_convert crashes on int() of it (facts §6), so pre-flight must stop here.
    label.write_text(label.read_text() + "Truck 0.00 0 0.00 nan 10 50 50 0 0 0 0 0 0 0\n")
    started = time.time()
    tfrecords = tmp_path / "tfr"
    tfrecords.mkdir()
    fields = request_fields(tmp_path, tfrecords=str(tfrecords), output=str(tmp_path / "out"), image=image)
    fields["base_model"]["location"] = str(demo_data / "pretrained" / "resnet18")
    state = train_detectnet_v2(TrainRequest(**fields), return_state=True)
    assert state.is_failed()
    with pytest.raises(DatasetError) as info:
        state.result()
    assert "000003.txt" in info.value.render()
    assert "000003.txt" in state.message, "the validator's finding must reach the flow run state"
    # The engine is shared: only containers labelled with this run count (created, even if removed since).
    run_id = str(state.state_details.flow_run_id)
    created = docker_client.events(since=int(started) - 1, until=int(time.time()) + 1, decode=True,
                                   filters={"type": "container", "event": "create"})
    assert not [e for e in created if e["Actor"]["Attributes"].get("org.taoflow.run-id", "").startswith(run_id)], \
        "a container was created"
    assert not (tmp_path / "out").exists()


@pytest.mark.exclusive  # it watches every job container that starts
def test_storage_outage_and_trainer_crash_are_retried(prefect_api, engine_env, azurite, blob_dataset,
                                                       blob_container, docker_client):
    # The trainer crashes once in epoch 2 (the retry must resume from the epoch-1 checkpoint), and
    # Azurite goes down while the new model is evaluated, so publishing meets an outage and must retry.
    image = engine_env({"TAO_STANDIN_FAIL_AT_EPOCH": "2", "TAO_STANDIN_FAIL_ONCE": "1",
                        "TAO_STANDIN_EPOCH_SECONDS": "1"})
    request = blob_request(blob_dataset, image, model_subfolder=f"run-{uuid.uuid4().hex[:6]}")
    outage = threading.Event()

    def pull_the_plug(starts):
        # Take Azurite down when the new model's evaluation container starts: the champion pointer
        # was read before it, and nothing touches storage again until publishing, so publishing
        # meets the outage for certain (waiting for the evaluation to *end* raced with a publish that
        # takes 0.2 s). Bring it back after longer than the Azure SDK's own retries last, so the
        # task-level retry has to do the work. Docker's event stream, not polling: a container of
        # one second cannot slip between two looks.
        trains = 0
        try:
            for event in starts:
                job = event.get("Actor", {}).get("Attributes", {}).get("org.taoflow.job")
                trains += job == "train"
                if job == "evaluate" and trains >= 2:
                    break
            else:
                return
        except OSError:  # the stream closed under us: the flow ended without the expected containers
            return
        azurite.stop()
        outage.set()
        time.sleep(30)
        azurite.start()

    container_starts = docker_client.events(decode=True, filters={"type": "container", "event": "start",
                                                                  "label": "org.taoflow.job"})
    plug = threading.Thread(target=pull_the_plug, args=(container_starts,), daemon=True)
    plug.start()
    try:
        state = train_detectnet_v2(request, return_state=True)
        plug.join(60)
    finally:
        container_starts.close()
    assert outage.is_set(), "the outage was never injected"
    assert state.is_completed(), state.message
    runs = {tr.name: tr for tr in task_runs(state.state_details.flow_run_id)}
    train_run = next(tr for name, tr in runs.items() if name.startswith("detectnet_v2-train"))
    assert train_run.run_count >= 2, "the trainer crash was not retried"
    # Publishing starts with the claim check (the version folder still this run's), then the upload.
    publish = [tr for name, tr in runs.items()
               if name.startswith(("check-version-claim", "sync-up")) and tr.run_count >= 2]
    assert publish, "publishing never met the outage"
    prefix = f"models/shapes/{request.model_subfolder}/"
    starts = blob_container.download_blob(prefix + "standin_starts.txt").readall().decode().split()
    assert starts[0] == "started_from_epoch=0" and starts[-1] != "started_from_epoch=0", starts
    assert blob_container.get_blob_client(prefix + MARKER).exists()


def test_unchanged_rerun_is_cached(prefect_api, engine_env, blob_dataset):
    image = engine_env()
    request = blob_request(blob_dataset, image)
    first = train_detectnet_v2(request, dry_run=True, return_state=True)
    second = train_detectnet_v2(request, dry_run=True, return_state=True)
    assert first.is_completed() and second.is_completed()
    deadline = time.monotonic() + 60
    while True:  # task runs and their states reach the API as events, shortly after the flow returns
        states = {tr.name: tr.state.name if tr.state else None for tr in task_runs(second.state_details.flow_run_id)}
        if not {"Running", "Pending", None} & set(states.values()) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    cached = [name for name, state in states.items() if state == "Cached"]
    assert any(n.startswith("validate-dataset") for n in cached), states
    # Staging is incremental, not cached (its cache key would list the storage again): the
    # unchanged re-run transferred nothing.
    rows = {run: next(line for line in artifacts_of(run)["train-summary"].data.splitlines()
                      if line.startswith("| training_data |"))
            for run in (first.state_details.flow_run_id, second.state_details.flow_run_id)}
    assert rows[second.state_details.flow_run_id].endswith("| 0.0 MB |"), rows
    assert not rows[first.state_details.flow_run_id].endswith("| 0.0 MB |"), rows
