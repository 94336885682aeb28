"""`model-card.json`: what a published model is, where it came from and how it scored.

Written into the results folder before it is published, so the published marker covers it and a
reader sees the card exactly when the model is complete. It holds no secret: the request is stored
as its JSON form without the key (SAS tokens masked), and the whole text is scrubbed once more.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

from pydantic import BaseModel, Field

from tasks.job.promotion_policy import Metrics, Verdict
from tasks.job.request import TrainRequest
from tasks.redact import Redactor
from tasks.registry.chain_record import ChainRecord

CARD_FILE = "model-card.json"
CARD_FORMAT = "taoflow.model-card/1"
#: A card is a few KB (its request, a line per input and per class); a larger one is not read.
MAX_CARD_BYTES = 1 << 20


class HeldOut(BaseModel):
    """The data a model was evaluated on (the champion was evaluated on the same, in the same run)."""

    source: str = Field(description="evaluation_data, validation_data, or the validation fold of the training TFRecords")
    fingerprint: str = Field(description="Content hash of that data (names, sizes, MD5s)")


class Evaluation(Metrics):
    """`detectnet_v2 evaluate` of this model on the held-out data."""

    held_out: HeldOut
    validation_cost: float | None = None


class ModelCard(BaseModel):
    """One published model version of an application."""

    format: str = CARD_FORMAT
    version: str = Field(description="The model folder under OUTPUT/MODEL_APP_NAME (model_subfolder)")
    run_id: str = Field(description="The Prefect flow run that trained it")
    created_at: str = Field(description="When the card was written (UTC, ISO 8601)")
    model: str = Field(description="The model file, relative to the version folder")
    evaluation: Evaluation
    training_validation: Metrics | None = Field(default=None, description="The last validation during training")
    dataset_fingerprint: str = Field(description="Content hash of the training data")
    inputs: dict[str, str] = Field(default_factory=dict, description="Content hash of every staged input, by name")
    spec_sha256: str = Field(description="SHA-256 of the rewritten spec TAO trained with")
    base_model: dict[str, Any] = Field(default_factory=dict, description="Location, content hash, pretrained file")
    tao_image: str
    tao_image_digest: str | None = Field(default=None, description="The image's digest, when the engine knows it")
    num_epochs: int
    verdict: Verdict = Field(description="The promotion verdict against the champion of the time")
    compared_with: str | None = Field(default=None, description="The champion's version it was compared with")
    request: dict[str, Any] = Field(default_factory=dict, description="The training request, without secrets")
    chain: ChainRecord | None = Field(default=None, description="The steps that made the model that ships (None: "
                                      "published before taoflow recorded them)")

    def to_json(self) -> bytes:
        return (json.dumps(self.model_dump(mode="json"), indent=2, allow_nan=False) + "\n").encode()


def held_out(request: TrainRequest, staged: Mapping[str, Any], uses_validation_source: bool,
             validation_fold: int | None) -> HeldOut:
    """Which data `evaluate` reads for this request, with the content hash of its staged inputs.

    >>> from types import SimpleNamespace as Staged
    >>> request = TrainRequest.model_construct(evaluation_data=None)
    >>> held_out(request, {"validation_data": Staged(fingerprint="v")}, True, None).source
    'validation_data'
    """
    if request.evaluation_data is not None:
        names, source = ["evaluation_data"], "evaluation_data"
    elif uses_validation_source:
        names = [n for n in ("validation_data", "validation_tfrecords") if n in staged]
        source = "validation_data"
    else:
        names = ["training_tfrecords"]
        source = f"validation_fold {validation_fold or 0} of training_tfrecords"
    digest = hashlib.sha256()
    for name in names:
        if name in staged:
            digest.update(f"{name}={staged[name].fingerprint}\n".encode())
    return HeldOut(source=source, fingerprint=digest.hexdigest())


def request_without_secrets(request: TrainRequest) -> dict[str, Any]:
    """The request as stored in a card: no key, SAS tokens and credential-shaped values masked.

    >>> from tasks.job.request import TrainRequest
    >>> request = TrainRequest(model_app_name="app", num_epochs=3, spec="az://specs/train.txt", output="az://models",
    ...     model_subfolder="r1", key="tlt_encode", training_data={"location": "az://d/x?sv=1&sig=SECRET", "spec_reference": "/d"},
    ...     training_tfrecords={"location": "az://t/x", "spec_reference": "/t"},
    ...     base_model={"location": "az://m/x", "spec_reference": "/m"})
    >>> stored = request_without_secrets(request)
    >>> "key" in stored, stored["training_data"]["location"]
    (False, 'az://d/x?sv=1&sig=***')
    """
    text = json.dumps(request.model_dump(mode="json", exclude={"key"}))
    return json.loads(Redactor()(text))


@dataclass(frozen=True)
class CardFacts:
    """Everything a model card says, as the flow knows it after the evaluation: one object."""

    request: TrainRequest
    run_id: str
    #: The model that ships, relative to the version folder.
    model: str
    evaluation: Evaluation
    training_validation: Metrics | None
    staged: Mapping[str, Any]
    spec_text: str
    pretrained_model_file: str | None
    num_epochs: int
    verdict: Verdict
    compared_with: str | None
    image_digest: str | None = None
    chain: ChainRecord | None = None


def build_card(facts: CardFacts) -> ModelCard:
    """The card of a version (`facts.request.model_subfolder`) whose model that ships is `facts.model`.

    >>> from types import SimpleNamespace as Staged
    >>> from tasks.job.promotion_policy import PromotionPolicy, judge_promotion
    >>> scores = Metrics(mean_average_precision=71.5, average_precision={"car": 71.5})
    >>> card = build_card(CardFacts(
    ...     request=TrainRequest.model_construct(model_subfolder="r1", image="tao:5", model_app_name="parking"),
    ...     run_id="run-1", model="weights/model.hdf5",
    ...     evaluation=Evaluation(**scores.model_dump(), held_out=HeldOut(source="evaluation_data", fingerprint="e")),
    ...     training_validation=None, staged={"training_data": Staged(fingerprint="d", location="az://d")},
    ...     spec_text="", pretrained_model_file=None, num_epochs=3, verdict=judge_promotion(PromotionPolicy(), scores, None),
    ...     compared_with=None))
    >>> card.version, card.model, card.evaluation.mean_average_precision
    ('r1', 'weights/model.hdf5', 71.5)
    """
    base = facts.staged.get("base_model")
    return ModelCard(
        version=facts.request.model_subfolder,
        run_id=facts.run_id,
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        model=facts.model,
        evaluation=facts.evaluation,
        training_validation=facts.training_validation,
        dataset_fingerprint=facts.staged["training_data"].fingerprint,
        inputs={name: item.fingerprint for name, item in sorted(facts.staged.items())},
        spec_sha256=hashlib.sha256(facts.spec_text.encode()).hexdigest(),
        base_model={"location": base.location if base else None, "fingerprint": base.fingerprint if base else None,
                    "pretrained_model_file": Path(facts.pretrained_model_file).name
                    if facts.pretrained_model_file else None},
        tao_image=facts.request.image,
        tao_image_digest=facts.image_digest,
        num_epochs=facts.num_epochs,
        verdict=facts.verdict,
        compared_with=facts.compared_with,
        request=request_without_secrets(facts.request),
        chain=facts.chain,
    )
