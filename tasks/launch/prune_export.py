"""How `detectnet_v2 prune` and `detectnet_v2 export` ended, decided as NVIDIA's code ends them
(`tao-source-facts.md` §8 and §10, `tao-traces/prune/`, `tao-traces/export/`), never from the exit
code alone:

- prune (`cv/common/magnet_prune.py`, `detectnet_v2/scripts/prune.py`): success is exit 0, a last
  line SUCCESS "Pruning finished successfully." whose sticky `kpi` holds `pruning_ratio`, `size` (MiB)
  and `param_count` (millions), and the pruned `.hdf5` at `-o`. An `-o` without `.hdf5` saves
  `<-o>.hdf5` and ends FAILURE "Model file wasn't found at <-o>" (exit 255); Ctrl-C ends FAILURE
  "Pruning was interrupted" with exit 0.
- export (`cv/common/export/app.py`, `keras_exporter.py`, `detectnet_v2/scripts/export.py`): success is
  exit 0, this launch's SUCCESS "Export complete." (top-level `size`, `param_count`) followed by SUCCESS
  "Export finished successfully.", and every file asked for: the `.onnx`; `labels.txt` and
  `nvinfer_config.txt` beside it (`--gen_ds_config`); the engine (`--engine_file`) and the calibration
  cache (INT8). An existing output ends FAILURE "Default output file … already exists", exit 255.

Both append to `<--results_dir>/status.json`: the launch's own lines are read, not a former run's.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from pathlib import Path

from tasks.errors import ExportFailed, PruneFailed
from tasks.launch.base import JobOutcome
from tasks.launch.chain_commands import DS_CONFIG_FILES, chain_command
from tasks.launch.judge import GPU_MARKERS, OOM_MARKERS
from tasks.launch.plan import LaunchPlan
from tasks.launch.step_verdict import (
    CRASHED,
    DID_NOTHING,
    DISAGREE,
    GPUS_NOT_VISIBLE,
    INTERRUPTED,
    KILLED,
    MODEL_MISSING,
    NOT_STARTED,
    OUT_OF_GPU_MEMORY,
    OUTPUT_MISSING,
    StepEvidence,
    fail,
    host_file,
    last_match,
    number,
    step_evidence,
)

PRUNE_SUCCESS = "Pruning finished successfully."
PRUNE_INTERRUPTED = "Pruning was interrupted"
EXPORT_COMPLETE = "Export complete."
EXPORT_SUCCESS = "Export finished successfully."
EXPORT_INTERRUPTED = "Export was interrupted"
#: `get_model_file_size` on an `-o` that lacks `.hdf5` (`cv/common/utils.py`).
SIZE_LOOKUP_FAILED = "Model file wasn't found at"
#: `model_io` on a missing `-m` (`cv/common/utils.py`).
MODEL_NOT_FOUND = "Model not found at"
OUTPUT_EXISTS_PREFIX = "Default output file"

COMPLETED = "completed"
SUFFIX_TRAP = "saved the model under another name"
NO_RATIO = "reported no pruning ratio"
OUTPUT_EXISTS = "refused an existing output"
NOT_EXPORTED = "ended without exporting"

FINAL_ENDINGS = frozenset({SUFFIX_TRAP, MODEL_MISSING, NO_RATIO, DISAGREE, OUTPUT_EXISTS, OUT_OF_GPU_MEMORY,
                           DID_NOTHING, OUTPUT_MISSING, GPUS_NOT_VISIBLE})
_RATIO_LINE = re.compile(r"Pruning ratio \(pruned model / original model\): (?P<ratio>[-+0-9.eE]+)")

_FIXES = {
    SUFFIX_TRAP: "name prune's -o ….hdf5: TAO appended .hdf5, then looked for the name without it",
    MODEL_MISSING: "the model is not where -m points: check the trained model's folder",
    NO_RATIO: "TAO said SUCCESS without a pruning ratio: read the log",
    DISAGREE: "the log and status.json do not belong together; prune again into an empty folder",
    OUTPUT_EXISTS: "export into an empty folder (a new model_subfolder), or remove the earlier export",
    OUT_OF_GPU_MEMORY: "free the GPU or give the step another one",
    DID_NOTHING: "TAO's wrapper drops empty values and splits paths with blanks: check the command",
    OUTPUT_MISSING: "check that the results folder is writable by the container's user and has free space",
    GPUS_NOT_VISIBLE: "the container sees fewer GPUs than --gpu_index names",
}


@dataclass(frozen=True)
class PruneResult:
    """The pruned model and what TAO measured: ratio = pruned / original parameters."""

    model_path: Path
    pruning_ratio: float
    #: TAO's `size`: the file's bytes / 2**20.
    size_mb: float | None
    #: TAO's `param_count`: parameters in millions.
    param_count: float | None
    exit_code: int | None = 0
    duration_s: float = 0.0


@dataclass(frozen=True)
class ExportResult:
    """Every file export wrote (None for what was not asked for) and TAO's measures of the ONNX."""

    onnx: Path
    labels: Path | None = None
    nvinfer_config: Path | None = None
    engine: Path | None = None
    cal_cache: Path | None = None
    #: TAO's `size` of the .onnx (of the engine when one was built), MiB; `param_count` in millions.
    size_mb: float | None = None
    param_count: float | None = None
    exit_code: int | None = 0
    duration_s: float = 0.0


def _common(e: StepEvidence) -> str | None:
    """The endings every step shares, decided before the step's own reading."""
    if e.exit_code in (137, 143) and not e.cancelled:
        return KILLED
    if any(marker in e.text for marker in OOM_MARKERS):
        return OUT_OF_GPU_MEMORY
    if e.last_status is None and any(marker in e.text for marker in GPU_MARKERS):
        return GPUS_NOT_VISIBLE
    if (e.last_message or "").startswith(MODEL_NOT_FOUND):
        return MODEL_MISSING
    return None


def _unfinished(e: StepEvidence, interrupted: str) -> str:
    if e.last_status == "FAILURE" and e.last_message == interrupted:
        return INTERRUPTED
    if e.last_status is None:
        return DID_NOTHING if e.exit_code == 0 else NOT_STARTED
    return CRASHED


def classify_prune(e: StepEvidence, *, model: Path | None, console_ratio: float | None) -> str:
    """The ending of a prune, as one of the names above."""
    kpi = e.last.get("kpi") if isinstance(e.last.get("kpi"), dict) else {}
    ratio = number(kpi.get("pruning_ratio"))
    if e.exit_code == 0 and e.last_status == "SUCCESS" and e.last_message == PRUNE_SUCCESS:
        if ratio is None:
            return NO_RATIO
        if console_ratio is not None and abs(console_ratio - ratio) > 1e-9:
            return DISAGREE
        return COMPLETED if model is not None else OUTPUT_MISSING
    if (common := _common(e)) is not None:
        return common
    if e.last_status == "FAILURE" and (e.last_message or "").startswith(SIZE_LOOKUP_FAILED):
        return SUFFIX_TRAP
    return _unfinished(e, PRUNE_INTERRUPTED)


def judge_prune(outcome: JobOutcome, plan: LaunchPlan) -> PruneResult:
    """A `PruneResult` for a pruned model with its ratio; `PruneFailed` (retryable only when it can help)."""
    command = chain_command(plan)
    e = step_evidence(outcome)
    model = host_file(plan, command.artifact)
    found = last_match(_RATIO_LINE, e.console)
    ending = classify_prune(e, model=model, console_ratio=float(found.group("ratio")) if found else None)
    if ending == COMPLETED:
        assert model is not None
        kpi = e.last["kpi"]
        return PruneResult(model, float(kpi["pruning_ratio"]), number(kpi.get("size")), number(kpi.get("param_count")),
                           outcome.exit_code, outcome.duration_s)
    detail = ""
    if ending == SUFFIX_TRAP:
        detail = f"TAO wrote {command.artifact}.hdf5 and then failed looking for {command.artifact}"
    elif ending == OUTPUT_MISSING:
        detail = f"TAO said SUCCESS but {command.artifact} is not a regular file"
    fail(PruneFailed, f"detectnet_v2 prune of {command.model}", ending, e, plan, final=FINAL_ENDINGS, fixes=_FIXES,
         detail=detail)


def classify_export(e: StepEvidence, *, missing: list[str]) -> str:
    """The ending of an export, as one of the names above (`missing`: the outputs not on disk)."""
    if e.exit_code == 0 and e.last_status == "SUCCESS" and e.last_message == EXPORT_SUCCESS:
        if not any(r.get("message") == EXPORT_COMPLETE for r in e.records):
            return NOT_EXPORTED
        return OUTPUT_MISSING if missing else COMPLETED
    if (common := _common(e)) is not None:
        return common
    message = e.last_message or ""
    if e.last_status == "FAILURE" and message.startswith(OUTPUT_EXISTS_PREFIX) and "already exists" in message:
        return OUTPUT_EXISTS
    return _unfinished(e, EXPORT_INTERRUPTED)


def judge_export(outcome: JobOutcome, plan: LaunchPlan) -> ExportResult:
    """An `ExportResult` when every file asked for is there; `ExportFailed` otherwise."""
    command = chain_command(plan)
    e = step_evidence(outcome)
    files = {path: host_file(plan, path) for path in command.outputs}
    missing = [path for path, host in files.items() if host is None]
    ending = classify_export(e, missing=missing)
    if ending == COMPLETED:
        complete = next(r for r in reversed(e.records) if r.get("message") == EXPORT_COMPLETE)
        onnx = files[command.artifact]
        assert onnx is not None
        beside = {name: files.get(posixpath.join(posixpath.dirname(command.artifact), name))
                  for name in DS_CONFIG_FILES} if command.ds_config else {}
        return ExportResult(
            onnx=onnx, labels=beside.get("labels.txt"), nvinfer_config=beside.get("nvinfer_config.txt"),
            engine=files.get(command.engine_file) if command.engine_file else None,
            cal_cache=files.get(command.calibration.cache_file) if command.calibration else None,
            size_mb=number(complete.get("size")), param_count=number(complete.get("param_count")),
            exit_code=outcome.exit_code, duration_s=outcome.duration_s)
    detail = f"TAO said SUCCESS but wrote no {', '.join(missing)}" if ending == OUTPUT_MISSING else ""
    fail(ExportFailed, f"detectnet_v2 export of {command.model}", ending, e, plan, final=FINAL_ENDINGS,
         fixes=_FIXES, detail=detail)
