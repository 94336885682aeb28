"""How TAO Deploy's `detectnet_v2 gen_trt_engine` ended, decided as NVIDIA's code ends it (read in
the PyPI wheel nvidia-tao-deploy 7.3.0 and run on a CPU: `tests/standin/deploy_traces/`), never from
the exit code alone:

- `cv/common/decorators.py: monitor_status` appends to `<-r>/status.json`: STARTED "Starting
  detectnet_v2 gen_trt_engine.", then SUCCESS "Gen_trt_engine finished successfully.", or a FAILURE
  line for the exceptions it catches ("Parameter validation error: …", "Feature not implemented: …",
  "File system error: …", "Configuration error: …", "User/System interruption: …" with exit 0). Any
  other exception (`SystemExit` from the ONNX parser or an empty calibration folder, AttributeError
  on Python 3.10 when TensorRT built nothing) leaves STARTED as the last line;
- SUCCESS without an engine file: no `--engine_file` builds nothing (the command always passes one);
- TensorRT building nothing reads "Parameter validation error: 'NoneType' object does not support
  the context manager protocol" on Python >= 3.11: a build failure, not a parameter;
- INT8 with fewer calibration images than batches x batch size calibrates on what there is, without a
  word but "Calibrating image N / M": the result carries a warning;
- the wrapper (`cv/common/entrypoint/entrypoint_proto.py`) exits 1, not 255, and logs its
  "Execution status" line through Python's logging.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from tasks.errors import EngineBuildFailed
from tasks.launch.base import JobOutcome
from tasks.launch.chain_commands import chain_command
from tasks.launch.judge import GPU_MARKERS, OOM_MARKERS
from tasks.launch.plan import LaunchPlan
from tasks.launch.step_verdict import (
    CRASHED,
    GPUS_NOT_VISIBLE,
    INTERRUPTED,
    KILLED,
    NOT_STARTED,
    OUT_OF_GPU_MEMORY,
    StepEvidence,
    fail,
    host_file,
    last_match,
    step_evidence,
)

SUCCESS_MESSAGE = "Gen_trt_engine finished successfully."
PARAMETER_ERROR_PREFIX = "Parameter validation error: "
#: `with None` on Python >= 3.11 when `build_serialized_network` returned no engine (`engine/builder.py`).
NO_ENGINE_BUILT = "'NoneType' object does not support the context manager protocol"
#: Python 3.10's words for the same.
NO_ENGINE_BUILT_PY310 = "AttributeError: __enter__"
NOT_ENOUGH_IMAGES = ("Not enough images to create batches", "Not enough number of images provided")
#: `--cal_data_file` in 7.3.0 compares 'png' with ('.png', …): it finds no image however many there are.
TENSORFILE_FINDS_NONE = "Not enough number of images provided: 0 <"
PARSER_REFUSED = "Failed to load ONNX file"
NO_IMAGES = re.compile(r"^No valid .* images found in ")
_CALIBRATING = re.compile(r"Calibrating image (?P<done>\d+) / (?P<total>\d+)")

COMPLETED = "completed"
NO_ENGINE = "wrote no engine"
NO_CAL_CACHE = "wrote no calibration cache"
BUILD_FAILED = "TensorRT built no engine"
ONNX_REFUSED = "TensorRT's parser refused the ONNX"
NOT_ENOUGH_CAL_IMAGES = "not enough calibration images"
NO_CAL_IMAGES = "no calibration images"
TENSORFILE_BUG = "found no calibration image on the --cal_data_file path"
PARAMETER_ERROR = "parameter error"
UNSUPPORTED = "model format not supported"
FILE_ERROR = "file error"
CONFIG_ERROR = "configuration error"

#: The other FAILURE lines of `monitor_status`, by their prefix.
_PREFIXES = {"Feature not implemented: ": UNSUPPORTED, "File system error: ": FILE_ERROR,
             "Configuration error: ": CONFIG_ERROR, "Schema validation error: ": CONFIG_ERROR,
             "User/System interruption: ": INTERRUPTED}
FINAL_ENDINGS = frozenset({NO_ENGINE, NO_CAL_CACHE, ONNX_REFUSED, NOT_ENOUGH_CAL_IMAGES, NO_CAL_IMAGES, TENSORFILE_BUG,
                           PARAMETER_ERROR, UNSUPPORTED, FILE_ERROR, CONFIG_ERROR, OUT_OF_GPU_MEMORY, GPUS_NOT_VISIBLE})
_FIXES = {
    NO_ENGINE: "TAO Deploy said SUCCESS but left no engine file: check --engine_file and the folder's permissions",
    NO_CAL_CACHE: "INT8 without a calibration cache cannot be deployed: check --cal_cache_file",
    BUILD_FAILED: "TensorRT could not build for this GPU (memory, workspace, an unsupported layer): read its log",
    ONNX_REFUSED: "the ONNX is not one TensorRT reads: export it again with TAO 5 (`detectnet_v2 export`)",
    NOT_ENOUGH_CAL_IMAGES: "give at least one calibration batch of images, or lower the calibration batch size",
    NO_CAL_IMAGES: "the calibration folder (or the spec's image_directory_path) holds no .jpg/.jpeg/.png/.bmp image",
    TENSORFILE_BUG: "leave --cal_data_file out: TAO Deploy 7.3.0 finds no image on that path; the image folder works",
    PARAMETER_ERROR: "read TAO Deploy's words above; check the engine's data type and batch sizes",
    UNSUPPORTED: "gen_trt_engine reads .onnx (TAO 5 export), .etlt or .uff",
    FILE_ERROR: "a file gen_trt_engine reads is missing (the spec, the model, a calibration file)",
    GPUS_NOT_VISIBLE: "the container sees fewer GPUs than --gpu_index names",
}


@dataclass(frozen=True)
class EngineResult:
    """A TensorRT engine built by TAO Deploy for this machine's GPU and TensorRT version."""

    engine: Path
    data_type: str
    cal_cache: Path | None = None
    #: Images INT8 calibration went through (None: no calibration ran in this launch).
    calibration_images: int | None = None
    #: What the engine is less than asked for (fewer calibration images), for the run's report.
    warnings: tuple[str, ...] = field(default_factory=tuple)
    exit_code: int | None = 0
    duration_s: float = 0.0


def classify(e: StepEvidence, *, engine: Path | None, cal_cache_missing: bool) -> str:
    """The ending, as one of the names above."""
    if e.exit_code == 0 and e.last_status == "SUCCESS" and e.last_message == SUCCESS_MESSAGE:
        return NO_ENGINE if engine is None else NO_CAL_CACHE if cal_cache_missing else COMPLETED
    if e.exit_code in (137, 143) and not e.cancelled:
        return KILLED
    if any(marker in e.text for marker in OOM_MARKERS):
        return OUT_OF_GPU_MEMORY
    message = e.last_message or ""
    if e.last_status == "FAILURE":
        if message.startswith(PARAMETER_ERROR_PREFIX):
            reason = message[len(PARAMETER_ERROR_PREFIX):]
            if reason.startswith(NO_ENGINE_BUILT):
                return BUILD_FAILED
            if reason.startswith(TENSORFILE_FINDS_NONE):
                return TENSORFILE_BUG
            return NOT_ENOUGH_CAL_IMAGES if reason.startswith(NOT_ENOUGH_IMAGES) else PARAMETER_ERROR
        return next((ending for prefix, ending in _PREFIXES.items() if message.startswith(prefix)), CRASHED)
    if e.last_status is None:
        return GPUS_NOT_VISIBLE if any(marker in e.text for marker in GPU_MARKERS) else NOT_STARTED
    if any(NO_ENGINE_BUILT_PY310 in line for line in e.console):
        return BUILD_FAILED
    if any(PARSER_REFUSED in line for line in e.console):
        return ONNX_REFUSED
    if any(NO_IMAGES.match(line) for line in e.console):
        return NO_CAL_IMAGES
    return CRASHED


def judge_gen_trt_engine(outcome: JobOutcome, plan: LaunchPlan) -> EngineResult:
    """An `EngineResult` when the engine (and, for INT8, its calibration cache) is on disk;
    `EngineBuildFailed` otherwise, retryable only when it can help."""
    command = chain_command(plan)
    e = step_evidence(outcome)
    engine = host_file(plan, command.engine_file)
    calibration = command.calibration
    cal_cache = host_file(plan, calibration.cache_file) if calibration else None
    ending = classify(e, engine=engine, cal_cache_missing=calibration is not None and cal_cache is None)
    if ending != COMPLETED:
        fail(EngineBuildFailed, f"detectnet_v2 gen_trt_engine of {command.model}", ending, e, plan,
             final=FINAL_ENDINGS, fixes=_FIXES)
    assert engine is not None
    progress = last_match(_CALIBRATING, e.console) if calibration and not calibration.reuse else None
    used = int(progress.group("total")) if progress else None
    warnings = []
    if calibration is not None and used is not None and used < calibration.images:
        warnings.append(f"INT8 calibration used {used} images, not the {calibration.images} asked for "
                        f"({calibration.batches} batches of {calibration.batch_size}): there were no more")
    return EngineResult(engine, command.data_type, cal_cache, used, tuple(warnings), outcome.exit_code,
                        outcome.duration_s)
