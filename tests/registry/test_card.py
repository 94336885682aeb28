"""The model card holds no secret, and the champion's folder is never a new run's target."""

from __future__ import annotations

import json

from tasks.job.request import PromotionPolicy, TrainRequest
from tasks.job.workspace import StagedInput
from tasks.registry import Metrics, build_card, judge_promotion
from tasks.registry.card import CardFacts, Evaluation, HeldOut

SIG = "c2VjcmV0LXNpZ25hdHVyZQ%3D%3D"
KEY = "nvidia-tao-model-key-1234"


def test_the_card_holds_no_key_and_no_sas(tmp_path):
    sas = f"https://acct.blob.core.windows.net/data/train?sv=2022-11-02&sp=rl&sig={SIG}"
    request = TrainRequest(
        model_app_name="parking", num_epochs=3, spec="az://specs/train.txt", output="az://models",
        model_subfolder="r1", key=KEY, storage_credentials="taoflow-blob",
        training_data={"location": sas, "spec_reference": "/data/train"},
        training_tfrecords={"location": "az://tfr/train", "spec_reference": "/data/tfr"},
        base_model={"location": "az://pretrained", "spec_reference": "/pretrained"},
    )
    staged = {name: StagedInput(name, f"loc-{name}", tmp_path, f"{name[:1]}" * 64, remote=True)
              for name in ("spec", "training_data", "training_tfrecords", "base_model")}
    mine = Metrics(mean_average_precision=70.0, average_precision={"car": 70.0})
    card = build_card(CardFacts(
        request=request, run_id="run-1", model="weights/model.hdf5",
        evaluation=Evaluation(**mine.model_dump(), held_out=HeldOut(source="evaluation_data", fingerprint="e" * 64)),
        training_validation=None, staged=staged, spec_text="num_epochs: 3\n",
        pretrained_model_file="/workspace/taoflow/base_model/resnet18.hdf5", num_epochs=3,
        verdict=judge_promotion(PromotionPolicy(), mine, None), compared_with=None, image_digest="sha256:abc",
    ))
    text = card.to_json().decode()
    assert KEY not in text and SIG not in text and "sig=" in text, "the SAS signature must be masked, not dropped"
    stored = json.loads(text)
    assert "key" not in stored["request"] and stored["request"]["storage_credentials"] == "taoflow-blob"
    assert stored["model"] == "weights/model.hdf5" and stored["dataset_fingerprint"] == "t" * 64
    assert stored["base_model"]["pretrained_model_file"] == "resnet18.hdf5" and stored["tao_image_digest"] == "sha256:abc"
