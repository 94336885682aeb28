"""What a run report holds: plain, typed data the pictures are drawn from.

The flow fills a `RunReport` as the run goes and saves it beside the model (`report.json`);
`taoflow report` reads it back (with the results folder's `status.json`) and draws the same
pictures, so the charts never depend on where they are rendered.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tasks.report.picture import Picture


class ClassCount(BaseModel):
    """Objects of one label class in the sampled frames."""

    name: str = Field(description="The label class, lower-cased as TAO reads it")
    target: str | None = Field(default=None, description="The class TAO trains it as (None: not mapped, dropped)")
    instances: int = Field(ge=0, description="Objects of this class in the sample")
    images: int = Field(ge=0, description="Sampled frames with at least one such object")


class DatasetSummary(BaseModel):
    """The shape of a KITTI dataset, from a bounded sample of its frames."""

    data_dir: str = Field(description="The dataset, as shown to people (no credentials)")
    images_total: int = Field(ge=0, description="Images in the image folder")
    frames_sampled: int = Field(ge=0, description="Frames whose label and image header were read")
    objects_sampled: int = Field(default=0, ge=0, description="Objects in the sampled label files")
    classes: list[ClassCount] = Field(default_factory=list, description="Per label class, most objects first")
    box_buckets: list[str] = Field(default_factory=list, description="Box height ranges, in pixels")
    box_counts: dict[str, list[int]] = Field(default_factory=dict,
                                             description="Target class -> boxes per height range")
    image_sizes: dict[str, int] = Field(default_factory=dict, description="'WxH' -> sampled frames, most first")

    @property
    def exact(self) -> bool:
        """True when every frame was read (the counts are the dataset's, not a sample's)."""
        return self.frames_sampled >= self.images_total


class EpochPoint(BaseModel):
    epoch: int = Field(description="Epochs completed when TAO wrote the line")
    loss: float | None = None
    learning_rate: float | None = None


class ValidationPoint(BaseModel):
    epoch: int = Field(description="The epoch this validation followed (1 = after the first)")
    mean_ap: float | None = Field(default=None, description="Mean average precision (%)")
    average_precision: dict[str, float] = Field(default_factory=dict, description="AP per class (%)")


class TrainingHistory(BaseModel):
    """Loss and validation metrics per epoch, over every session of a results folder."""

    num_epochs: int | None = Field(default=None, description="Epochs asked for (max_epoch)")
    epochs: list[EpochPoint] = Field(default_factory=list)
    validations: list[ValidationPoint] = Field(default_factory=list)


class Comparison(BaseModel):
    """The new model (challenger) and the current champion, evaluated on the same held-out data."""

    challenger: dict[str, float] = Field(description="AP per class of the new model (%)")
    champion: dict[str, float] | None = Field(default=None, description="AP per class of the champion (%), "
                                              "None when there is none yet")
    challenger_map: float | None = Field(default=None, description="mAP of the new model (%)")
    champion_map: float | None = Field(default=None, description="mAP of the champion (%)")
    outcome: str | None = Field(default=None, description="What happened, e.g. 'Promoted' or 'Not promoted'")
    reasons: list[str] = Field(default_factory=list, description="Why, one line per finding")


class ChainStep(BaseModel):
    """One step of the chain after training, as the report draws it."""

    model_config = ConfigDict(allow_inf_nan=False)

    step: str = Field(description="train, prune, retrain, export or engine")
    mean_average_precision: float | None = Field(default=None, description="Held-out mAP of its model (%), "
                                                 "when it was evaluated")
    size_mb: float | None = Field(default=None, description="Size of its model file (.hdf5, .onnx, engine), MiB")
    param_count: float | None = Field(default=None, description="Parameters of its model, millions, where known")
    pruning_ratio: float | None = Field(default=None, description="Pruned / original parameters (prune)")


class ChainSummary(BaseModel):
    """The chain after training (prune, retrain, export, engine): each step's numbers, which model
    ships and why. Drawn from the model card's chain record (`chain_summary`)."""

    model_config = ConfigDict(allow_inf_nan=False)

    shipped: Literal["unpruned", "pruned"] = Field(description="Which model ships")
    decision: str = Field(description="Why that model ships (the gates' words)")
    compared_on: str = Field(default="", description="The model the champion was compared with")
    steps: list[ChainStep] = Field(default_factory=list, description="In the chain's order")

    @property
    def shipping_step(self) -> str:
        """The step whose model ships: the retrained model when the pruned one ships, else training's."""
        return "retrain" if self.shipped == "pruned" else "train"


class RunReport(BaseModel):
    """Everything the report shows about one run; every part is optional except the title."""

    model_config = ConfigDict(ser_json_bytes="base64", val_json_bytes="base64")

    title: str = Field(description="Heading, e.g. 'parking / resnet18_detector'")
    run_id: str | None = Field(default=None, description="The Prefect flow run id")
    created: str = Field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"),
                         description="When the report was made (UTC, ISO 8601)")
    results_location: str | None = Field(default=None, description="Where the model is published (no SAS)")
    dataset: DatasetSummary | None = None
    samples: Picture | None = Field(default=None, description="The contact sheet of sample frames")
    training: TrainingHistory | None = None
    comparison: Comparison | None = None
    chain: ChainSummary | None = Field(default=None, description="The chain after training, when one ran")
    notes: list[str] = Field(default_factory=list, description="Lines shown under the heading")
