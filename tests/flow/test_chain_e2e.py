"""A model you can deploy, end to end on real Azurite, dockerd (the stand-in TAO and TAO Deploy images)
and the Prefect API: train -> prune -> the ratio gate -> retrain -> evaluate both -> the mAP gate ->
export (ONNX, DeepStream config) -> TensorRT engine -> publish -> promote on the model that ships.

- An export failure injected once fails the first run; the run again starts no train, prune or retrain
  container (docker's event stream) and publishes the whole chain, promoted on the retrained model.
- A retrained model that loses more mAP than allowed: the unpruned model ships, and the run says why.
- A pruning ratio out of bounds stops the chain with that reason.
"""

from __future__ import annotations

import json
import time

import pytest

from flows.train import train_detectnet_v2
from tasks.errors import ChainStopped, ExportFailed
from tests.flow.test_flow_azure import blob_request

pytestmark = pytest.mark.services

CHAIN = {"prune": {"enabled": True, "threshold": 0.01}, "export": {"enabled": True},
         "engine": {"enabled": True, "tao_deploy_image": "", "data_type": "int8"}}
STEP_JOBS = {"train", "prune"}


def created_jobs(docker_client, run_id: str, since: float) -> list[str]:
    """The sub-tasks of every container this run created (docker's own record, whatever became of them)."""
    events = docker_client.events(since=int(since) - 1, until=int(time.time()) + 1, decode=True,
                                  filters={"type": "container", "event": "create"})
    return [e["Actor"]["Attributes"].get("org.taoflow.job") for e in events
            if e["Actor"]["Attributes"].get("org.taoflow.run-id", "").startswith(run_id)]


def chain_request(blob_dataset, image, deploy_image, **extra):
    chain = json.loads(json.dumps(CHAIN))
    chain["engine"]["tao_deploy_image"] = deploy_image
    chain.update(extra.pop("chain", {}))
    return blob_request(blob_dataset, image, chain=chain, subfolder_per_run=True, model_subfolder="chain", **extra)


def test_a_failed_export_run_again_reuses_training_and_ships_the_retrained_model(
        prefect_api, engine_env, blob_dataset, blob_container, docker_client, standin_deploy_image):
    image = engine_env({"TAO_STANDIN_PRUNE_RATIO": "0.3", "TAO_STANDIN_EXPORT_FAIL_ONCE": "1",
                        "TAO_STANDIN_EXPORT_FAIL": "OOM when allocating tensor with shape[64,3,544,960]"})
    request = chain_request(blob_dataset, image, standin_deploy_image)
    first = train_detectnet_v2(request, return_state=True)
    assert first.is_failed()
    with pytest.raises(ExportFailed):
        first.result()
    started = time.time()
    again = train_detectnet_v2(request, return_state=True)
    assert again.is_completed() and again.name == "Promoted", again.message
    run_id = str(again.state_details.flow_run_id)
    jobs = created_jobs(docker_client, run_id, started)
    assert not STEP_JOBS & set(jobs) and "export" in jobs and "gen_trt_engine" in jobs, jobs

    result = again.result()
    version = result.results_location.rsplit("/", 1)[1]
    prefix = f"models/shapes/{version}/"
    names = {b.name[len(prefix):] for b in blob_container.list_blobs(name_starts_with=prefix)}
    expected = {"weights/shapes_detector.hdf5", "status.json", "model-card.json", "_taoflow_published.json",
                "chain/prune/shapes_detector_pruned.hdf5", "chain/prune/status.json",
                "chain/retrain/weights/shapes_detector_pruned.hdf5", "chain/retrain/status.json",
                "chain/export/shapes_detector.onnx", "chain/export/labels.txt", "chain/export/nvinfer_config.txt",
                "chain/export/status.json", "chain/engine/shapes_detector.int8.engine",
                "chain/engine/calibration.bin", "chain/engine/status.json"}
    assert expected <= names, sorted(expected - names)
    card = json.loads(blob_container.download_blob(prefix + "model-card.json").readall())
    assert card["model"] == "chain/retrain/weights/shapes_detector_pruned.hdf5"
    chain = card["chain"]
    assert chain["shipped"] == "pruned" and "retrained pruned model" in chain["compared_on"]
    assert [s["step"] for s in chain["steps"]] == ["train", "prune", "retrain", "export", "engine"]
    assert chain["steps"][1]["pruning_ratio"] == pytest.approx(0.3)
    assert "pruning kept 30.0%" in chain["decision"] and "the pruned model is the candidate" in chain["decision"]
    published = {a["path"]: a for a in chain["artifacts"]}
    for path, facts in published.items():
        import hashlib

        data = blob_container.download_blob(prefix + path).readall()
        assert hashlib.sha256(data).hexdigest() == facts["sha256"], path
    assert {a["step"] for a in chain["artifacts"]} == {"train", "prune", "retrain", "export", "engine"}
    champion = json.loads(blob_container.download_blob("models/shapes/champion.json").readall())
    assert champion["model"] == f"{version}/chain/retrain/weights/shapes_detector_pruned.hdf5"
    assert champion["shipped"] == "pruned"


def test_pruning_that_costs_too_much_map_ships_the_unpruned_model(
        prefect_api, engine_env, blob_dataset, blob_container, standin_deploy_image):
    image = engine_env({"TAO_STANDIN_PRUNE_RATIO": "0.3", "TAO_STANDIN_PRUNED_AP_DROP": "5"})
    request = chain_request(blob_dataset, image, standin_deploy_image,
                            chain={"max_map_drop_after_prune": 2.0, "export": {"enabled": False},
                                   "engine": {"enabled": False}})
    state = train_detectnet_v2(request, return_state=True)
    assert state.is_completed(), state.message
    result = state.result()
    assert any("pruning cost 5.00 points of mAP" in note and "the unpruned model is the candidate" in note
               for note in result.notes), result.notes
    version = result.results_location.rsplit("/", 1)[1]
    card = json.loads(blob_container.download_blob(f"models/shapes/{version}/model-card.json").readall())
    assert card["model"] == "weights/shapes_detector.hdf5" and card["chain"]["shipped"] == "unpruned"
    steps = {s["step"]: s for s in card["chain"]["steps"]}
    assert steps["train"]["mean_average_precision"] - steps["retrain"]["mean_average_precision"] == pytest.approx(5.0)


def test_a_pruning_ratio_out_of_bounds_stops_the_chain_with_that_reason(
        prefect_api, engine_env, blob_dataset, standin_deploy_image):
    image = engine_env({"TAO_STANDIN_PRUNE_RATIO": "0.99"})
    state = train_detectnet_v2(chain_request(blob_dataset, image, standin_deploy_image), return_state=True)
    assert state.is_failed()
    with pytest.raises(ChainStopped) as caught:
        state.result()
    assert "above max_pruning_ratio 0.950" in caught.value.what and "raise chain.prune.threshold" in caught.value.what
    assert "the chain stopped after pruning" in state.message
