"""Pre-flight validation of a KITTI dataset against a DetectNet_v2 spec, on a CPU, in seconds."""

from tasks.dataset.codes import CHECKS, Check
from tasks.dataset.report import ValidationReport
from tasks.dataset.validate import DatasetValidation, validate_dataset

__all__ = ["CHECKS", "Check", "DatasetValidation", "ValidationReport", "validate_dataset"]
