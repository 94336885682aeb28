"""What a model card says about the chain that made the model that ships: every step's artifact (size,
parameters, SHA-256, its status.json), the pruning ratio, the mAP each candidate scored on the held-out
data, which model ships and why, and which model the champion was compared with.

Plain data, read back by `taoflow models show` and drawn by the report; written by the flow from
`tasks.launch.step_artifacts.artifact_facts` of each step's files.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

#: Numbers read back from a card are finite or the card is refused (as its metrics are).
_FINITE = ConfigDict(allow_inf_nan=False)


class StepArtifact(BaseModel):
    """One file a step made, as published in the version folder."""

    model_config = _FINITE

    step: Literal["train", "prune", "retrain", "export", "engine"]
    kind: str = Field(description="model (.hdf5), onnx, labels, nvinfer_config, engine, cal_cache (calibration)")
    path: str = Field(description="Relative to the version folder")
    size_mb: float = Field(description="File size, MiB")
    sha256: str
    param_count: float | None = Field(default=None, description="Parameters in millions, as TAO reported them")


class StepMetrics(BaseModel):
    """A step's numbers: the held-out mAP of its model (when evaluated), the pruning ratio (prune)."""

    model_config = _FINITE

    step: Literal["train", "prune", "retrain", "export", "engine"]
    mean_average_precision: float | None = Field(default=None, description="Held-out evaluation mAP (%)")
    pruning_ratio: float | None = Field(default=None, description="Pruned / original parameters (prune)")
    status: str | None = Field(default=None, description="The step's status.json, relative to the version folder")


class ChainRecord(BaseModel):
    """The chain after training, as the model card records it.

    >>> record = ChainRecord(shipped="pruned", decision="pruning cost 0.50 points of mAP", compared_on="the retrained model")
    >>> record.shipped, record.steps
    ('pruned', [])
    """

    shipped: Literal["unpruned", "pruned"] = Field(description="Which model ships (and is the version's `model`)")
    decision: str = Field(description="Why that model ships (the gate's words)")
    compared_on: str = Field(description="The model the champion was compared with, and how it was evaluated")
    steps: list[StepMetrics] = Field(default_factory=list)
    artifacts: list[StepArtifact] = Field(default_factory=list)
