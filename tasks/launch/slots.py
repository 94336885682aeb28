"""Stable in-container paths: the spec rewrite points at these, the launcher mounts at these.

One table, so the two sides cannot drift. Inputs are mounted read-only, results read-write.
The paths are stable across runs so a retried job finds its checkpoints where it left them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

CONTAINER_ROOT = "/workspace/taoflow"


class Slot(str, Enum):
    """A named input or output of a training job."""

    SPEC = "spec"
    TRAINING_DATA = "training_data"
    VALIDATION_DATA = "validation_data"
    TRAINING_TFRECORDS = "training_tfrecords"
    VALIDATION_TFRECORDS = "validation_tfrecords"
    BASE_MODEL = "base_model"
    RESULTS = "results"
    #: A held-out set that `evaluate` reads instead of the spec's validation data.
    EVALUATION_DATA = "evaluation_data"
    #: The folder holding the model `evaluate` scores (-m): the new model or the champion.
    EVALUATED_MODEL = "evaluated_model"
    #: INT8 calibration images (export, gen_trt_engine), when not the spec's training images.
    CALIBRATION_DATA = "calibration_images"


@dataclass(frozen=True)
class SlotInfo:
    container_path: str
    read_only: bool
    description: str


SLOTS: dict[Slot, SlotInfo] = {
    Slot.SPEC: SlotInfo(f"{CONTAINER_ROOT}/specs", True, "the rewritten experiment spec"),
    Slot.TRAINING_DATA: SlotInfo(f"{CONTAINER_ROOT}/data/training", True, "KITTI training data root"),
    Slot.VALIDATION_DATA: SlotInfo(f"{CONTAINER_ROOT}/data/validation", True, "KITTI validation data root"),
    Slot.TRAINING_TFRECORDS: SlotInfo(f"{CONTAINER_ROOT}/tfrecords/training", True, "training TFRecords"),
    Slot.VALIDATION_TFRECORDS: SlotInfo(f"{CONTAINER_ROOT}/tfrecords/validation", True, "validation TFRecords"),
    Slot.BASE_MODEL: SlotInfo(f"{CONTAINER_ROOT}/base_model", True, "pretrained model directory"),
    Slot.RESULTS: SlotInfo(f"{CONTAINER_ROOT}/results", False, "experiment results (-r)"),
    Slot.EVALUATION_DATA: SlotInfo(f"{CONTAINER_ROOT}/data/evaluation", True, "held-out KITTI data for evaluate"),
    Slot.EVALUATED_MODEL: SlotInfo(f"{CONTAINER_ROOT}/evaluated_model", True, "the model evaluate scores (-m)"),
    Slot.CALIBRATION_DATA: SlotInfo(f"{CONTAINER_ROOT}/data/calibration", True, "INT8 calibration images"),
}

#: File name of the rewritten spec inside the SPEC slot.
SPEC_FILE_NAME = "experiment_spec.txt"


def container_path(slot: Slot) -> str:
    return SLOTS[slot].container_path


def container_spec_file() -> str:
    return f"{container_path(Slot.SPEC)}/{SPEC_FILE_NAME}"
