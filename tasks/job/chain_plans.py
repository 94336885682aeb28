"""Launch plans of the chain after training (prune, retrain, export, gen_trt_engine), as plain functions.

Each step writes into a folder of its own (`FOLDER/specs`, `FOLDER/results`), which the flow takes from
the step cache (`tasks.job.step_cache`): a folder serves every run with the same inputs, so a step
continues whatever an earlier attempt of the same step left there (`resume`). The model a step reads
is mounted read-only at the base-model slot; the spec it reads is the train spec (or the retrain spec
derived from it, `tasks.spec.retrain_spec`), with paths as the trainer sees them: the container's
mounts for the Docker launcher, the staged copies for a process already inside the TAO image.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Mapping

from tasks.errors import LaunchError
from tasks.files import read_regular, write_atomic
from tasks.job.plans import job_plan, plan_training
from tasks.job.preflight import PreparedSpec
from tasks.job.request import TrainRequest
from tasks.job.workspace import StagedInput
from tasks.launch import LaunchPlan
from tasks.launch.chain_commands import export_command, gen_trt_engine_command, prune_command
from tasks.launch.slots import SPEC_FILE_NAME, Slot, container_path, container_spec_file
from tasks.spec import parse_spec, retrain_spec

_R, _BASE = container_path(Slot.RESULTS), container_path(Slot.BASE_MODEL)
CAL_CACHE = "calibration.bin"


def _model_path(request: TrainRequest, model: Path) -> str:
    """A model file as the trainer sees it once its folder is mounted at the base-model slot."""
    return f"{_BASE}/{model.name}" if request.launcher == "docker" else str(model)


def _with_base(staged: Mapping[str, StagedInput], folder: Path) -> dict[str, StagedInput]:
    """The staged inputs with the base-model slot on `folder` (the pruned model's, for the retrain)."""
    base = staged["base_model"]
    return {**staged, "base_model": StagedInput(base.name, base.location, folder, base.fingerprint, remote=False)}


def plan_prune(request: TrainRequest, model: Path, folder: Path, run_id: str) -> LaunchPlan:
    """`detectnet_v2 prune` of `model` (the trained .hdf5) into FOLDER/results, with the request's knobs.
    """
    results = folder / "results"
    results.mkdir(parents=True, exist_ok=True)
    command = prune_command(model=f"{_BASE}/{model.name}", output=f"{_R}/{request.model_name}_pruned.hdf5",
                            results_dir=_R, options=request.chain.prune.options())
    return job_plan(request, command, {Slot.BASE_MODEL: model.parent, Slot.RESULTS: results}, f"{run_id}-prune",
                    gpu_index=request.gpu_index[:1]).with_options(resume=True)


def retrain_text(request: TrainRequest, spec_text: str, source: str, pruned_model: Path) -> str:
    """`spec_text` (the train spec, or the spec evaluate reads) as NVIDIA's retrain spec differs from it."""
    return retrain_spec(parse_spec(spec_text, file=source), _model_path(request, pruned_model)).text


def plan_retrain(request: TrainRequest, prepared: PreparedSpec, staged: Mapping[str, StagedInput], pruned_model: Path,
                 folder: Path, run_id: str, *, key: str | None = None) -> LaunchPlan:
    """`detectnet_v2 train` of the pruned model (`load_graph: true`) into FOLDER/results: the training's
    data and epochs, the retrain spec, the model named `<model_name>_pruned` as in NVIDIA's notebook.
    """
    text = retrain_text(request, prepared.text, prepared.source, pruned_model)
    pruned_request = request.model_copy(update={"model_name": f"{request.model_name}_pruned"})
    plan = plan_training(pruned_request, replace(prepared, text=text), _with_base(staged, pruned_model.parent),
                         folder, f"{run_id}-retrain", key=key)
    return plan.with_options(resume=True)


def pruned_evaluation_text(request: TrainRequest, eval_text: str, source: str, model: Path) -> str:
    """The spec `evaluate` reads for a pruned model (the retrained challenger, or a champion that shipped
    pruned): NVIDIA's retrain form of it, `load_graph: true` with the evaluated model itself as the graph
    (NVIDIA's notebook evaluates the retrained model with the retrain spec)."""
    graph = f"{container_path(Slot.EVALUATED_MODEL)}/{model.name}" if request.launcher == "docker" else str(model)
    return retrain_spec(parse_spec(eval_text, file=source), graph).text


def _copy_file(source: Path, target: Path) -> None:
    """A file a container wrote, copied without following a link (read whole: a calibration cache is small)."""
    data = read_regular(source, limit=64 << 20)
    if data is None:
        raise LaunchError(f"{source.name} is not where export wrote it", where=str(source),
                          fix="run the export again (change the request, or remove its step folder)")
    write_atomic(target, data)


def _spec_dir(folder: Path, spec_text: str) -> Path:
    specs = folder / "specs"
    write_atomic(specs / SPEC_FILE_NAME, spec_text)
    (folder / "results").mkdir(parents=True, exist_ok=True)
    return specs


def _calibration_slot(staged: Mapping[str, StagedInput]) -> tuple[dict[Slot, Path], str | None]:
    calibration = staged.get("calibration_images")
    if calibration is None:
        return {}, None  # TAO calibrates from the spec's training images (mounted with the data)
    return {Slot.CALIBRATION_DATA: calibration.path}, container_path(Slot.CALIBRATION_DATA)


def _data_slots(request: TrainRequest, staged: Mapping[str, StagedInput]) -> dict[Slot, Path]:
    return {Slot(name): staged[name].path for name in request.training_bindings() if name != "base_model"}


def plan_export(request: TrainRequest, model: Path, spec_text: str, staged: Mapping[str, StagedInput], folder: Path,
                run_id: str) -> LaunchPlan:
    """`detectnet_v2 export` of `model` (the candidate .hdf5) to FOLDER/results/<model_name>.onnx, with the
    DeepStream config; fp16/int8 also build an engine in the TAO image (int8: the calibration cache).
    """
    policy = request.chain.export
    calibration, images = _calibration_slot(staged)
    engine = f"{_R}/{request.model_name}.export.{policy.data_type}.engine" if policy.data_type != "fp32" else None
    command = export_command(
        model=f"{_BASE}/{model.name}", output=f"{_R}/{request.model_name}.onnx", spec=container_spec_file(),
        results_dir=_R, gen_ds_config=policy.gen_ds_config, onnx_route=policy.onnx_route, data_type=policy.data_type,
        engine_file=engine, calibration=policy.calibration.settings(f"{_R}/{CAL_CACHE}", images)
        if policy.data_type == "int8" else None)
    slots = {Slot.SPEC: _spec_dir(folder, spec_text), Slot.BASE_MODEL: model.parent, Slot.RESULTS: folder / "results",
             **_data_slots(request, staged), **calibration}
    return job_plan(request, command, slots, f"{run_id}-export", gpu_index=request.gpu_index[:1]).with_options(
        resume=True)


def plan_engine(request: TrainRequest, onnx: Path, spec_text: str, staged: Mapping[str, StagedInput], folder: Path,
                run_id: str) -> LaunchPlan:
    """TAO Deploy's `detectnet_v2 gen_trt_engine` of the exported `onnx` in the request's TAO Deploy image;
    INT8 reuses export's calibration cache (beside the ONNX) when export calibrated, else calibrates.
    """
    chain = request.chain
    policy = chain.engine
    calibration, images = _calibration_slot(staged)
    reuse = chain.reuse_export_calibration and policy.data_type == "int8"
    if reuse:
        # TAO Deploy reads an existing cache instead of calibrating again: export's, copied into this step's
        # own results so the engine's result names files of its folder only.
        _copy_file(onnx.parent / CAL_CACHE, folder / "results" / CAL_CACHE)
    settings = (chain.export.calibration.settings(f"{_R}/{CAL_CACHE}", images, reuse=reuse)
                if policy.data_type == "int8" else None)
    command = gen_trt_engine_command(
        model=f"{_BASE}/{onnx.name}", spec=container_spec_file(), results_dir=_R,
        engine_file=f"{_R}/{request.model_name}.{policy.data_type}.engine", data_type=policy.data_type,
        calibration=settings, batch_sizes=policy.batch_sizes())
    slots = {Slot.SPEC: _spec_dir(folder, spec_text), Slot.BASE_MODEL: onnx.parent, Slot.RESULTS: folder / "results",
             **_data_slots(request, staged), **calibration}
    plan = job_plan(request, command, slots, f"{run_id}-engine", gpu_index=request.gpu_index[:1])
    return plan.with_options(image=policy.tao_deploy_image, resume=True)
