"""Launch plans of a job's containers (dataset_convert, train, evaluate), as plain functions: the
rewritten specs written into the run folder, the slots mounted, the GPUs numbered, the key passed
only where TAO needs it."""

from __future__ import annotations

import json
import os
import posixpath
from pathlib import Path
from typing import Mapping

from tasks.errors import ConfigError
from tasks.files import write_atomic
from tasks.job.preflight import TFRECORDS_SOURCE_FILE, PreparedSpec, read_spec_text
from tasks.job.request import TrainRequest
from tasks.job.workspace import StagedInput
from tasks.launch import (
    LaunchPlan,
    build_plan,
    container_gpu_index,
    convert_command,
    evaluate_command,
    key_reason,
    load_tao_mounts,
    train_command,
)
from tasks.launch.slots import SPEC_FILE_NAME, Slot, container_path, container_spec_file
from tasks.spec import SpecFacts, parse_spec, require_valid, rewrite_spec

DOCKER_NETWORK_ENV = "TAOFLOW_DOCKER_NETWORK"


def output_prefix(facts: SpecFacts) -> str:
    """The `-o` prefix, relative to the TFRecords folder, that makes shards the train spec's glob matches.

    NVIDIA's notebooks point the glob into a folder below the reference (`<ref>/kitti_trainval/*`):
    the shards must then be written into that folder, named after it.

    >>> output_prefix(SpecFacts(tfrecords_paths=["/workspace/taoflow/tfrecords/training/kitti_trainval/*"]))
    'kitti_trainval/kitti_trainval'
    >>> output_prefix(SpecFacts(tfrecords_paths=["/workspace/taoflow/tfrecords/training/shapes-fold-*"]))
    'shapes'
    """
    glob = (facts.tfrecords_paths or ["*"])[0]
    root = container_path(Slot.TRAINING_TFRECORDS)
    relative = glob[len(root) + 1:] if glob.startswith(root + "/") else posixpath.basename(glob)
    folder, pattern = posixpath.split(relative)
    if any(ch in folder for ch in "*?[") or ".." in folder.split("/"):
        folder = ""  # a wildcard folder names no single place to write to
    stem = pattern.split("-fold", 1)[0].split("*", 1)[0].rstrip("-_") or posixpath.basename(folder)
    return posixpath.join(folder, stem or "tfrecords")


def plan_conversion(
    request: TrainRequest, prepared: PreparedSpec, staged: Mapping[str, StagedInput], run_dir: Path, run_id: str
) -> tuple[LaunchPlan, Path]:
    """Rewrite the dataset_convert spec and plan `dataset_convert` writing into RUN_DIR/convert/tfrecords.

    >>> import tempfile
    >>> from tasks.job.demo import demo_inputs
    >>> from tasks.job.preflight import prepare_spec
    >>> root = Path(tempfile.mkdtemp())
    >>> request, staged = demo_inputs(root)
    >>> plan, tfrecords = plan_conversion(request, prepare_spec(request, staged), staged, root / "run", "run-1")
    >>> plan.command.display_argv()[:2], tfrecords.name
    (['detectnet_v2', 'dataset_convert'], 'tfrecords')
    """
    spec_staged = staged["dataset_convert_spec"]
    doc = parse_spec(read_spec_text(spec_staged), file=spec_staged.location, kind="dataset_convert")
    binding = request.training_data
    # The converter reads the paths in its spec as they are: the container's mounts, or the staged
    # copies for a process already inside the TAO image (as `prepare_spec` rewrites the train spec).
    data = (container_path(Slot.TRAINING_DATA) if request.launcher == "docker"
            else str(staged["training_data"].path))
    rebase = {binding.spec_reference: data} if binding.spec_reference else {}
    result = rewrite_spec(doc, rebase, kind="dataset_convert")
    require_valid(parse_spec(result.text, file=spec_staged.location, kind="dataset_convert"))
    work = run_dir / "convert"
    spec_dir, out_dir = work / "specs", work / "tfrecords"
    out_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(spec_dir / "dataset_convert_spec.txt", result.text)
    results = container_path(Slot.RESULTS)
    command = convert_command(
        spec=f"{container_path(Slot.SPEC)}/dataset_convert_spec.txt",
        output_prefix=f"{results}/tfrecords/{output_prefix(prepared.facts)}",
        results_dir=results,
    )
    slots = {Slot.SPEC: spec_dir, Slot.RESULTS: work, Slot.TRAINING_DATA: staged["training_data"].path}
    return job_plan(request, command, slots, f"{run_id}-convert"), out_dir


def finish_conversion(out_dir: Path, dataset_fingerprint: str) -> list[Path]:
    """Keep only the shards in the TFRecords folder and record which data they came from."""
    moved = []
    for extra in out_dir.rglob("*_warning.json"):
        # A bare `*` glob in the train spec would feed this JSON to the TFRecord reader.
        target = out_dir.parent / extra.name
        extra.replace(target)
        moved.append(target)
    write_atomic(out_dir / TFRECORDS_SOURCE_FILE, json.dumps({"dataset_fingerprint": dataset_fingerprint}))
    return moved


# --- training ------------------------------------------------------------------------------


def plan_training(
    request: TrainRequest,
    prepared: PreparedSpec,
    staged: Mapping[str, StagedInput],
    run_dir: Path,
    run_id: str,
    *,
    key: str | None = None,
) -> LaunchPlan:
    """Write the rewritten spec into the run folder and plan `detectnet_v2 train` on the staged inputs.

    >>> import tempfile
    >>> from tasks.job.demo import demo_inputs
    >>> from tasks.job.preflight import prepare_spec
    >>> root = Path(tempfile.mkdtemp())
    >>> request, staged = demo_inputs(root)
    >>> plan = plan_training(request, prepare_spec(request, staged), staged, root / "run", "run-1")
    >>> plan.command.display_argv()[:3], plan.gpus.describe()
    (['detectnet_v2', 'train', '-e'], '1 GPU')
    """
    spec_dir, results = run_dir / "specs", run_dir / "results"
    write_atomic(spec_dir / SPEC_FILE_NAME, prepared.text)
    results.mkdir(parents=True, exist_ok=True)
    # Inside a container the requested host GPUs are renumbered from 0; a process already in the
    # TAO image sees the host's numbering.
    tao_gpu_index = container_gpu_index(request.gpu_index) if request.launcher == "docker" else request.gpu_index
    # The key goes into the argv (visible to `docker inspect` and `ps`) only when TAO needs it.
    why_key = _needs_key(key_reason(prepared.host_facts.pretrained_model_file, results, request.image), key,
                         "", prepared.source)
    command = train_command(
        model_name=request.model_name,
        num_epochs=prepared.facts.num_epochs or request.num_epochs,
        key=key if why_key else None,
        key_reason=why_key,
        num_gpus=request.num_gpus,
        gpu_index=tao_gpu_index,
        use_amp=request.use_amp,
        log_file=request.log_file,
        spec=container_spec_file(),
        results_dir=container_path(Slot.RESULTS),
    )
    slots: dict[Slot, Path] = {Slot.SPEC: spec_dir, Slot.RESULTS: results}
    slots.update({Slot(name): staged[name].path for name in request.training_bindings()})
    return job_plan(request, command, slots, run_id)


# --- evaluation ----------------------------------------------------------------------------


def plan_evaluation(
    request: TrainRequest,
    spec_text: str,
    staged: Mapping[str, StagedInput],
    run_dir: Path,
    run_id: str,
    *,
    role: str,
    model: Path,
    key: str | None = None,
) -> LaunchPlan:
    """Plan `detectnet_v2 evaluate` of MODEL on the held-out data into RUN_DIR/evaluate/ROLE.

    Never into train's results folder: evaluate opens `<-r>/status.json` with "w". `spec_text` is
    `prepare_spec(..., evaluation=True).text`; the model's folder is mounted read-only.

    >>> import tempfile
    >>> from tasks.job.demo import demo_inputs
    >>> from tasks.job.preflight import prepare_spec
    >>> root = Path(tempfile.mkdtemp())
    >>> request, staged = demo_inputs(root)
    >>> model = root / "weights" / "model.hdf5"; model.parent.mkdir(); _ = model.write_bytes(b"weights")
    >>> spec = prepare_spec(request, staged, evaluation=True).text
    >>> plan_evaluation(request, spec, staged, root / "run", "run-1", role="challenger", model=model).command.model
    '/workspace/taoflow/evaluated_model/model.hdf5'
    """
    work = run_dir / "evaluate" / role
    spec_dir, results = work / "specs", work / "results"
    write_atomic(spec_dir / SPEC_FILE_NAME, spec_text)
    results.mkdir(parents=True, exist_ok=True)
    why_key = _needs_key(key_reason(model.name, None, request.image), key, f" to evaluate the {role}", str(model))
    # One GPU: the first requested one (numbered from 0 inside a container, as for train).
    gpu = (0 if request.launcher == "docker" else request.gpu_index[0]) if request.gpu_index else None
    command = evaluate_command(
        spec=container_spec_file(),
        model=f"{container_path(Slot.EVALUATED_MODEL)}/{model.name}",
        results_dir=container_path(Slot.RESULTS),
        key=key if why_key else None,
        key_reason=why_key,
        gpu_index=gpu,
    )
    slots: dict[Slot, Path] = {Slot.SPEC: spec_dir, Slot.RESULTS: results, Slot.EVALUATED_MODEL: model.parent}
    slots.update({Slot(name): staged[name].path for name in request.bindings()})
    return job_plan(request, command, slots, f"{run_id}-evaluate-{role}", gpu_index=request.gpu_index[:1])


def _needs_key(why: str | None, key: str | None, purpose: str, where: str) -> str | None:
    """`why` TAO needs the key; a ConfigError before any container when it does and there is none."""
    if why and not key:
        raise ConfigError(
            f"TAO needs the encryption key (-k){purpose}: {why}",
            where=where,
            fix="store the key in a Prefect Secret block and set key_block (or export TAO_KEY for `taoflow run`)",
        )
    return why


def job_plan(request: TrainRequest, command, slots, run_id: str, gpu_index: list[int] | None = None) -> LaunchPlan:
    """The plan of one of the request's containers: its image, GPUs, network and ~/.tao_mounts.json."""
    return build_plan(
        command,
        slots=slots,
        run_id=run_id,
        image=request.image,
        docker_gpus=request.docker_gpus,
        gpu_index=request.gpu_index if gpu_index is None else gpu_index,
        network_mode=os.environ.get(DOCKER_NETWORK_ENV) or None,
        # Users coming from NVIDIA's `tao` launcher keep their ~/.tao_mounts.json (or LAUNCHER_MOUNTS).
        tao_mounts=load_tao_mounts(),
        resume=request.resume,
    )

