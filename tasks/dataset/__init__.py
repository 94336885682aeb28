"""Pre-flight validation of a KITTI dataset against a DetectNet_v2 spec, on a CPU, in seconds."""

from tasks.dataset.codes import CHECKS, Check
from tasks.dataset.report import ValidationReport
from tasks.dataset.validate import validate_dataset

__all__ = ["CHECKS", "Check", "ValidationReport", "validate_dataset"]
