"""How a `detectnet_v2` job ended, decided from the evidence real TAO leaves behind.

Never from the exit code alone, and never from the last status line alone
(`tao-source-facts.md` §1-3 and §8, the endings in `tao-traces/train/`):

- a refused spec exits 0 with "Execution status: PASS" and a last line FAILURE "Training was
  interrupted";
- SIGUSR1 and Ctrl-C end with SUCCESS "DetectNet_v2 training job complete." and a
  `weights/<name>.hdf5`, after fewer epochs than asked for;
- epoch lines read `0 … N-1` or `1 … N`, so the last epoch line cannot tell a finished run;
- a crash still saves `weights/<name>.hdf5`.

What does tell: `model.epoch-<E>.ckzip` with E = epochs completed is saved at the start, every
`checkpoint_interval` epochs and at the end, so a run is complete when the newest checkpoint
has E == num_epochs, the last status is SUCCESS, the wrapper said PASS (exit 0) and the final
model file exists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from tasks.errors import LaunchError, TrainingFailed
from tasks.launch.attempts import Attempt, AttemptJournal
from tasks.launch.base import JobOutcome
from tasks.launch.plan import LaunchPlan
from tasks.launch.results import newest_checkpoint_epoch, regular_file
from tasks.launch.status import EpochEvent, ValidationEvent
from tasks.redact import Redactor

COMPLETED = "completed"
STOPPED_EARLY = "stopped early"
SPEC_REJECTED = "spec rejected"
OUT_OF_GPU_MEMORY = "out of GPU memory"
#: Out of GPU memory while another job used the same GPU: not the spec's fault, and not final.
SHARED_GPU_OUT_OF_MEMORY = "out of GPU memory on a shared GPU"
BAD_DATA = "bad training data"
GPUS_NOT_VISIBLE = "GPUs not visible"
CRASHED = "crashed"
NOT_STARTED = "crashed before training started"
KILLED = "killed"
TERMINATED = "terminated from outside"
MODEL_MISSING = "final model missing"

#: Endings a retry cannot change without a change to the spec, the data or the machine.
FINAL_ENDINGS = frozenset({SPEC_REJECTED, OUT_OF_GPU_MEMORY, BAD_DATA, GPUS_NOT_VISIBLE})

OOM_MARKERS = ("Ran out of GPU memory", "ResourceExhaustedError", "OOM when allocating", "CUDA_ERROR_OUT_OF_MEMORY")
#: TAO's words for a refused or unreadable spec: its validator's console line, protobuf's parser.
SPEC_MARKERS = ("Spec file validation failed", "text_format.ParseError", "google.protobuf.text_format")
#: Decoding errors TensorFlow raises for the same bytes every time.
DATA_MARKERS = ("Invalid PNG data", "Invalid JPEG data", "Not a JPEG file", "DataLossError", "corrupted record")
GPU_MARKERS = ("Checking for valid GPU ids and num_gpus",)
_ERROR_LINE = re.compile(r"(\b\w*(Error|Exception)\b:|\[ERROR\]|Fatal Python error|AssertionError)")


@dataclass(frozen=True)
class TrainResult:
    """A completed training: the model, how far it got, and every validation in status.json."""

    results_dir: Path
    model_path: Path
    num_epochs: int
    #: Epochs done before this launch (the checkpoint it resumed from; 0 for a fresh run).
    start_epoch: int = 0
    #: The epoch lines this launch wrote.
    epochs: list[EpochEvent] = field(default_factory=list)
    #: Every validation in the results folder, oldest first, each with the epoch it validated.
    validations: list[ValidationEvent] = field(default_factory=list)
    exit_code: int | None = 0
    duration_s: float = 0.0

    @property
    def completed_epochs(self) -> int:
        return self.num_epochs

    @property
    def epochs_trained(self) -> int:
        """Epochs this launch trained (0 for a re-run of a finished folder)."""
        return max(self.num_epochs - self.start_epoch, 0)

    @property
    def final_validation(self) -> ValidationEvent | None:
        return self.validations[-1] if self.validations else None

    @property
    def final_map(self) -> float | None:
        final = self.final_validation
        return final.mean_average_precision if final else None

    @property
    def per_class_ap(self) -> dict[str, float]:
        final = self.final_validation
        return dict(final.average_precision) if final else {}


@dataclass(frozen=True)
class ConvertResult:
    output_files: list[Path]
    exit_code: int | None = 0


@dataclass(frozen=True)
class Evidence:
    """Everything the verdict is drawn from, read once after the job ended."""

    exit_code: int | None
    last_status: str | None
    last_message: str | None
    num_epochs: int | None
    start_epoch: int
    #: Epochs in the newest checkpoint's name (None without one).
    checkpoint: int | None
    #: Epochs completed as far as the epoch lines and validations of this launch tell.
    reached: int
    model: Path | None
    console: list[str]
    cancelled: bool = False
    #: Other jobs seen on the same GPUs while this one ran.
    neighbours: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        return "\n".join([*self.console, self.last_message or ""])

    @property
    def tao_error(self) -> str | None:
        """TAO's own error line: the last console line that reads like one."""
        for line in reversed(self.console):
            if _ERROR_LINE.search(line) and not line.startswith("Execution status"):
                return line.strip()
        return None


def gather_evidence(outcome: JobOutcome, plan: LaunchPlan) -> Evidence:
    results = plan.results_host_dir
    assert results is not None, "a training plan always has a results folder"
    status = outcome.status
    num_epochs = plan.command.num_epochs or next(
        (e.max_epoch for s in reversed(status.sessions) for e in reversed(s.epochs)), None)
    model = results / "weights" / f"{plan.command.model_name}.hdf5"
    checkpoint = newest_checkpoint_epoch(results)
    return Evidence(
        exit_code=outcome.exit_code,
        last_status=status.last_status,
        last_message=status.last_message,
        num_epochs=num_epochs,
        start_epoch=status.current.start_epoch or 0,
        checkpoint=checkpoint,
        reached=max([checkpoint or 0, *(e.epoch for e in status.epochs),
                     *(v.epoch for s in status.launched for v in s.validations if v.epoch is not None)]),
        model=model if regular_file(model) else None,
        console=list(outcome.log_tail),
        cancelled=outcome.cancelled,
        neighbours=outcome.gpu_neighbours,
    )


def classify(evidence: Evidence) -> str:
    """The ending, as one of the names above."""
    e = evidence
    if (e.exit_code == 0 and e.last_status == "SUCCESS" and e.model is not None
            and e.num_epochs is not None and (e.checkpoint or 0) >= e.num_epochs):
        return COMPLETED
    if e.exit_code == 137:
        return KILLED
    if e.exit_code == 143 and not e.cancelled:
        return TERMINATED
    if any(marker in e.text for marker in OOM_MARKERS):
        return SHARED_GPU_OUT_OF_MEMORY if e.neighbours else OUT_OF_GPU_MEMORY
    if e.last_status == "FAILURE" and any(marker in e.text for marker in SPEC_MARKERS):
        return SPEC_REJECTED
    if any(marker in e.text for marker in GPU_MARKERS):
        return GPUS_NOT_VISIBLE
    if e.last_status == "SUCCESS":
        if e.num_epochs is not None and (e.checkpoint or 0) < e.num_epochs:
            return STOPPED_EARLY
        return MODEL_MISSING if e.model is None else CRASHED
    if e.last_status == "FAILURE" and any(marker in e.text for marker in DATA_MARKERS):
        return BAD_DATA
    if e.last_status is None:
        return NOT_STARTED
    return CRASHED


def judge_training(outcome: JobOutcome, plan: LaunchPlan) -> TrainResult:
    """A `TrainResult` for a complete run; `TrainingFailed` (retryable only when it can help) otherwise."""
    evidence = gather_evidence(outcome, plan)
    ending = classify(evidence)
    redact = Redactor(plan.secrets)
    tao_words = redact(evidence.last_message or "") if evidence.last_status == "FAILURE" else ""
    error_line = redact(evidence.tao_error or "")
    attempt = Attempt(ending, tao_words or error_line, evidence.reached, evidence.exit_code)
    repeated = AttemptJournal(plan.attempts_file).record(attempt)
    status = outcome.status
    if ending == COMPLETED:
        assert evidence.model is not None and evidence.num_epochs is not None
        return TrainResult(plan.results_host_dir, evidence.model, evidence.num_epochs, evidence.start_epoch,
                           list(status.epochs), list(status.validations), outcome.exit_code, outcome.duration_s)
    retry_helps = ending not in FINAL_ENDINGS and not repeated
    raise TrainingFailed(
        _headline(ending, evidence, tao_words),
        exit_code=outcome.exit_code,
        reason=ending,
        log_tail=outcome.log_tail,
        resumable=retry_helps,
        tao_error=error_line or tao_words or None,
        completed_epochs=evidence.checkpoint if ending == STOPPED_EARLY else evidence.reached,
        num_epochs=evidence.num_epochs,
        where=str(plan.results_host_dir),
        fix=_fix(ending, repeated, evidence),
    )


def _headline(ending: str, e: Evidence, tao_words: str) -> str:
    of = f" of {e.num_epochs}" if e.num_epochs else ""
    done = (e.checkpoint or 0) if ending == STOPPED_EARLY else e.reached
    if ending == STOPPED_EARLY:
        return (f"detectnet_v2 train stopped after epoch {done}{of}: the last status says SUCCESS "
                f"but the newest checkpoint is model.epoch-{done}.ckzip")
    if ending == SPEC_REJECTED:
        return "TAO's spec validator refused the spec (exit code 0 and \"Execution status: PASS\" all the same)"
    if ending == MODEL_MISSING:
        return f"detectnet_v2 train reached epoch {done}{of} but wrote no weights/<model_name>.hdf5"
    if ending == NOT_STARTED:
        return "detectnet_v2 train ended before writing any status (the container or TAO's wrapper failed)"
    if ending == SHARED_GPU_OUT_OF_MEMORY:
        return (f"detectnet_v2 train ran out of GPU memory in epoch {done + 1}{of} while another job used the same "
                f"GPU: {', '.join(e.neighbours)}")
    where = f" in epoch {done + 1}{of}" if e.num_epochs and done < e.num_epochs else ""
    said = f": {tao_words}" if tao_words else ""
    return f"detectnet_v2 train {ending}{where}{said}"


def _fix(ending: str, repeated: bool, e: Evidence) -> str:
    if repeated:
        return ("the previous attempt failed the same way at the same point, so another retry cannot help: "
                "read TAO's error line above")
    fixes = {
        OUT_OF_GPU_MEMORY: "lower training_config.batch_size_per_gpu, use a smaller input size or a smaller backbone",
        SHARED_GPU_OUT_OF_MEMORY: "the memory went to the other job, not to this spec, so a retry may succeed; declare the host's GPUs (TAOFLOW_GPUS) on every worker so runs book them and never share",
        SPEC_REJECTED: "run `taoflow spec check` on the spec and correct what it reports",
        BAD_DATA: "an image cannot be decoded: run `taoflow validate` on the dataset and replace the file TAO names",
        GPUS_NOT_VISIBLE: "gpu_index names GPUs the container cannot see: check the host's GPU ids (nvidia-smi -L)",
        MODEL_MISSING: "check that the results folder is writable by the container user and has free space",
        STOPPED_EARLY: "someone stopped the trainer (SIGUSR1 or Ctrl-C); a retry resumes from the newest checkpoint",
    }
    return fixes.get(ending, "read TAO's error line above; a retry resumes from the newest checkpoint")


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
