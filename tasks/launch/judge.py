"""Deciding whether a job succeeded: never by the exit code alone.

NVIDIA's launcher exits 0 when training failed, and TAO itself ends an interrupted run with
SUCCESS. A training counts as done only when the last status is SUCCESS, the last epoch is
`max_epoch`, and the final model file exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tasks.errors import LaunchError, TrainingFailed
from tasks.launch.base import JobOutcome
from tasks.launch.plan import LaunchPlan
from tasks.launch.results import checkpoints
from tasks.launch.status import EpochEvent, ValidationEvent
from tasks.redact import Redactor

OOM_MARKERS = ("Ran out of GPU memory", "ResourceExhaustedError", "OOM when allocating", "CUDA_ERROR_OUT_OF_MEMORY")
# Only what TAO prints when it refuses a spec. Not the spec's file name: every log names it
# (the trainer echoes its -e argument), and a crash must not pass for a final spec rejection.
SPEC_MARKERS = ("ParseError", "text_format", "spec_validator", "Spec file validation failed")
#: Reasons a retry cannot fix, even with checkpoints to resume from.
FINAL_REASONS = {"out of GPU memory", "spec rejected"}


@dataclass(frozen=True)
class TrainResult:
    results_dir: Path
    model_path: Path
    epochs: list[EpochEvent] = field(default_factory=list)
    validations: list[ValidationEvent] = field(default_factory=list)
    exit_code: int | None = 0
    duration_s: float = 0.0

    @property
    def final_map(self) -> float | None:
        return self.validations[-1].mean_average_precision if self.validations else None


@dataclass(frozen=True)
class ConvertResult:
    output_files: list[Path]
    exit_code: int | None = 0


def judge_training(outcome: JobOutcome, plan: LaunchPlan) -> TrainResult:
    results = plan.results_host_dir
    assert results is not None, "a training plan always has a results folder"
    status = outcome.status
    last = status.last_epoch
    model = _model_file(results, plan.command.model_name)
    if status.last_status == "SUCCESS" and last is not None and last.epoch == last.max_epoch and model is not None:
        return TrainResult(results, model, list(status.epochs), list(status.validations), outcome.exit_code, outcome.duration_s)
    reason = _reason(outcome, model)
    resumable = bool(checkpoints(results)) and reason not in FINAL_REASONS
    progress = f"epoch {last.epoch}/{last.max_epoch}" if last else "no epoch finished"
    message = Redactor(plan.secrets)(status.last_message) if status.last_message else None
    raise TrainingFailed(
        f"detectnet_v2 train did not finish ({progress}; last status {status.last_status or 'none'}"
        f"{': ' + message if message else ''})",
        exit_code=outcome.exit_code,
        reason=reason,
        log_tail=outcome.log_tail,
        resumable=resumable,
        where=str(results),
        fix=_FIXES.get(reason, "read the log lines above; a retry resumes from the last checkpoint" if resumable else
                       "read the log lines above"),
    )


def judge_conversion(outcome: JobOutcome, plan: LaunchPlan) -> ConvertResult:
    prefix = plan.command.output_prefix
    host_prefix = plan.mounts.host_path(prefix) if prefix else None
    files = sorted(host_prefix.parent.glob(host_prefix.name + "-*")) if host_prefix else []
    status_ok = plan.command.results_dir is None or outcome.status.last_status == "SUCCESS"
    if outcome.exit_code == 0 and status_ok and files:
        return ConvertResult(files, outcome.exit_code)
    raise LaunchError(
        f"detectnet_v2 dataset_convert failed (exit code {outcome.exit_code}, {len(files)} TFRecord file(s) written)\n"
        + "\n".join(f"    | {line}" for line in outcome.log_tail),
        where=str(host_prefix or prefix),
        fix="check the dataset export spec's paths and the KITTI labels (taoflow validate finds most problems)",
    )


def _model_file(results: Path, name: str) -> Path | None:
    for suffix in (".hdf5", ".tlt"):
        path = results / "weights" / f"{name}{suffix}"
        if path.is_file():
            return path
    return None


def _reason(outcome: JobOutcome, model: Path | None) -> str:
    status = outcome.status
    text = "\n".join(outcome.log_tail) + "\n" + (status.last_message or "")
    last = status.last_epoch
    if any(marker in text for marker in OOM_MARKERS):
        return "out of GPU memory"
    if outcome.exit_code == 137:
        return "killed (exit 137: out of host memory or stopped by force)"
    if outcome.exit_code == 143 and not outcome.cancelled:
        return "terminated from outside (exit 143: SIGTERM, e.g. the Docker engine restarting or `docker stop`)"
    if status.last_status == "FAILURE" and last is None and _spec_refused(outcome):
        return "spec rejected"
    if status.last_status == "SUCCESS":
        if last is None or last.epoch < last.max_epoch:
            return "interrupted early"
        if model is None:
            return "final model missing"
    if not status.records:
        return "crashed before training started"
    return "crashed"


def _spec_refused(outcome: JobOutcome) -> bool:
    """TAO's own words for a refused spec, in its final status or in an error line of the log."""
    lines = [outcome.status.last_message or ""] + [
        line for line in outcome.log_tail if "Error" in line or "failed" in line or "FAIL" in line
    ]
    return any(marker in line for line in lines for marker in SPEC_MARKERS)


_FIXES = {
    "out of GPU memory": "lower training_config.batch_size_per_gpu, use a smaller input size or a smaller backbone",
    "spec rejected": "run `taoflow spec check` on the spec and correct what it reports",
    "final model missing": "check that the results folder is writable by the container user and has free space",
}
