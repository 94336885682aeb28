"""A training job from request to launch plan, as plain functions.

`taoflow plan` calls these directly (no server, no GPU); the flow calls the same functions
through thin Prefect tasks. The order is the design's: stage inputs -> rewrite the spec onto the
container mounts and check it -> validate the dataset -> (dataset_convert) -> launch plan.
"""

from __future__ import annotations

import json
import os
import posixpath
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from tasks.dataset import ValidationReport, validate_dataset
from tasks.dataset.tfrecords import any_shard
from tasks.errors import ConfigError, Problem, SpecError
from tasks.files import write_atomic
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
from tasks.spec import SpecFacts, extract_facts, parse_spec, require_valid, rewrite_spec

#: Written beside TFRecords taoflow made: which dataset content they were made from.
TFRECORDS_SOURCE_FILE = ".taoflow-dataset.json"  # a dot-file: TAO's glob.glob skips it
DOCKER_NETWORK_ENV = "TAOFLOW_DOCKER_NETWORK"


@dataclass(frozen=True)
class PreparedSpec:
    """The spec as the trainer will read it, its facts on both sides, and what changed.

    With the Docker launcher the trainer sees the container mounts; with the process launcher
    (already inside the TAO image) it sees the staged local paths.
    """

    source: str
    text: str
    diff: str
    changes: list
    facts: SpecFacts  # paths as the container sees them
    host_facts: SpecFacts  # the same spec with paths onto the staged local copies
    warnings: list[Problem] = field(default_factory=list)


def input_locations(request: TrainRequest) -> dict[str, str]:
    """Every input to stage, by name: the spec and each data binding."""
    locations = {"spec": request.spec}
    locations.update({name: b.location for name, b in request.bindings().items()})
    if request.dataset_convert_spec:
        locations["dataset_convert_spec"] = request.dataset_convert_spec
    return locations


def _rebasings(request: TrainRequest, target: Mapping[str, str], evaluation: bool) -> dict[str, str]:
    bindings = request.training_bindings()
    if evaluation and request.evaluation_data is not None:
        # For evaluate only, the held-out set replaces whatever the same spec path meant for training.
        bindings["evaluation_data"] = request.evaluation_data
    return {b.spec_reference: target[name] for name, b in bindings.items() if b.spec_reference}


def container_rebasings(request: TrainRequest, *, evaluation: bool = False) -> dict[str, str]:
    return _rebasings(request, {slot.value: container_path(slot) for slot in Slot}, evaluation)


def host_rebasings(request: TrainRequest, staged: Mapping[str, StagedInput], *, evaluation: bool = False) -> dict[str, str]:
    return _rebasings(request, {name: str(s.path) for name, s in staged.items()}, evaluation)


def read_spec_text(staged_spec: StagedInput) -> str:
    path = staged_spec.path
    if path.is_dir():
        raise ConfigError(
            f"the spec location {staged_spec.location} is a folder, not a file",
            fix="point `spec` at the experiment spec file itself",
        )
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"{staged_spec.location} is not UTF-8 text (byte {exc.start})", where=staged_spec.location,
                        fix="save the spec as UTF-8 text") from None


def prepare_spec(request: TrainRequest, staged: Mapping[str, StagedInput], *, evaluation: bool = False) -> PreparedSpec:
    """Rewrite the spec onto the container mounts, set the epochs, and check what TAO will read.

    With `evaluation`, the spec `evaluate` reads: the same, with the request's `evaluation_data`
    (when given) in place of the spec's validation_data_source.
    """
    source = staged["spec"].location
    text = read_spec_text(staged["spec"])
    doc = parse_spec(text, file=source)
    in_container = request.launcher == "docker"
    targets = (container_rebasings(request, evaluation=evaluation) if in_container
               else host_rebasings(request, staged, evaluation=evaluation))
    result = rewrite_spec(doc, targets, request.num_epochs, request.spec_overrides)
    # Check the text TAO will read: the rewrite adds no lines (bar an inserted num_epochs),
    # so the line numbers in any error still point into the user's file.
    rewritten = parse_spec(result.text, file=source)
    warnings = require_valid(rewritten)
    if in_container:
        host = rewrite_spec(doc, host_rebasings(request, staged, evaluation=evaluation), request.num_epochs,
                            request.spec_overrides)
        host_facts = extract_facts(parse_spec(host.text, file=source))
    else:
        host_facts = extract_facts(rewritten)
    prepared = PreparedSpec(source, result.text, result.diff, list(result.changes), extract_facts(rewritten),
                            host_facts, warnings)
    if evaluation and request.evaluation_data is not None:
        _check_held_out(request, prepared, targets)
    return prepared


def evaluation_spec(request: TrainRequest, staged: Mapping[str, StagedInput], prepared: PreparedSpec) -> PreparedSpec:
    """The spec `evaluate` reads: the training spec, or with `evaluation_data` in place of the
    validation data (checked before any training starts)."""
    return prepared if request.evaluation_data is None else prepare_spec(request, staged, evaluation=True)


def _check_held_out(request: TrainRequest, prepared: PreparedSpec, targets: Mapping[str, str]) -> None:
    """evaluate reads the spec's validation_data_source: the held-out set must be what it now names."""
    binding = request.evaluation_data
    assert binding is not None
    facts = prepared.facts
    fix = ("set evaluation_data.spec_reference to the folder the spec's dataset_config.validation_data_source "
           "paths are under (a spec with validation_fold evaluates on a fold of the training TFRecords: leave "
           "evaluation_data empty, or give the spec a validation_data_source)")
    if not facts.has_validation_data_source:
        raise ConfigError("evaluation_data is given, but the spec has no dataset_config.validation_data_source for "
                          "it to replace (it uses validation_fold)", where=prepared.source, fix=fix)
    target = targets.get(binding.spec_reference or "")
    paths = [p for p in (facts.validation_tfrecords_path, facts.validation_image_directory_path) if p]
    if target is None or not paths or not all(p == target or p.startswith(target.rstrip("/") + "/") for p in paths):
        raise ConfigError(f"evaluation_data.spec_reference {binding.spec_reference!r} does not cover the spec's "
                          f"validation_data_source ({', '.join(paths) or 'no paths'})", where=prepared.source, fix=fix)


def base_model_problems(prepared: PreparedSpec) -> list[Problem]:
    """TAO asserts "Pretrained model file not found" only after the container is up: say it now."""
    path = prepared.host_facts.pretrained_model_file
    if not path:
        return []
    if not os.path.isabs(path):
        return [Problem("base-model-relative", f"pretrained_model_file {path!r} is relative; TAO reads it from "
                        "the container's working directory", file=prepared.source,
                        hint="set specfile_reference_model_dir / base_model.spec_reference to its folder")]
    if not Path(path).is_file():
        return [Problem("base-model-missing", f"the pretrained model {path} does not exist in the staged base model",
                        file=prepared.source, hint="check base_model.location and that the file name in the spec "
                        "(model_config.pretrained_model_file) exists there")]
    return []


def validate_inputs(
    request: TrainRequest, prepared: PreparedSpec, staged: Mapping[str, StagedInput], *, check_tfrecords: bool = True,
    strict: bool = False,
) -> ValidationReport:
    """The dataset validator on the staged data, against the rewritten spec's facts."""
    def path(name: str) -> str | None:
        return str(staged[name].path) if name in staged else None

    return validate_dataset(
        prepared.host_facts,
        staged["training_data"].path,
        strict=strict,
        validation_data_dir=path("validation_data"),
        tfrecords_dir=path("training_tfrecords") if check_tfrecords else None,
        validation_tfrecords_dir=path("validation_tfrecords") if check_tfrecords else None,
        gpus=request.num_gpus,
    )


# --- dataset_convert ----------------------------------------------------------------------


def conversion_reason(request: TrainRequest, staged: Mapping[str, StagedInput]) -> str | None:
    """Why the TFRecords must be (re)made, or None: empty location, or made from other data."""
    if not request.dataset_convert_spec:
        return None
    tfrecords = staged["training_tfrecords"].path
    # Shards may sit in sub-folders (`<reference>/kitti_trainval/*`, NVIDIA's notebook layout).
    if not tfrecords.is_dir() or not any_shard(str(tfrecords)):
        return "the TFRecords location is empty"
    source = tfrecords / TFRECORDS_SOURCE_FILE
    if source.is_file():
        try:
            made_from = json.loads(source.read_text()).get("dataset_fingerprint")
        except (ValueError, OSError):
            made_from = None
        if made_from != staged["training_data"].fingerprint:
            return "the dataset changed since these TFRecords were made"
    return None


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
    """Rewrite the dataset_convert spec and plan `dataset_convert` writing into RUN_DIR/convert/tfrecords."""
    spec_staged = staged["dataset_convert_spec"]
    doc = parse_spec(read_spec_text(spec_staged), file=spec_staged.location, kind="dataset_convert")
    binding = request.training_data
    rebase = {binding.spec_reference: container_path(Slot.TRAINING_DATA)} if binding.spec_reference else {}
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
    return _plan(request, command, slots, f"{run_id}-convert"), out_dir


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
    """Write the rewritten spec into the run folder and plan `detectnet_v2 train` on the staged inputs."""
    spec_dir, results = run_dir / "specs", run_dir / "results"
    write_atomic(spec_dir / SPEC_FILE_NAME, prepared.text)
    results.mkdir(parents=True, exist_ok=True)
    # Inside a container the requested host GPUs are renumbered from 0; a process already in the
    # TAO image sees the host's numbering.
    tao_gpu_index = container_gpu_index(request.gpu_index) if request.launcher == "docker" else request.gpu_index
    # The key goes into the argv (visible to `docker inspect` and `ps`) only when TAO needs it.
    why_key = key_reason(prepared.host_facts.pretrained_model_file, results, request.image)
    if why_key and not key:
        raise ConfigError(
            f"TAO needs the encryption key (-k): {why_key}",
            where=prepared.source,
            fix="store the key in a Prefect Secret block and set key_block (or export TAO_KEY for `taoflow run`)",
        )
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
    return _plan(request, command, slots, run_id)


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
    """
    work = run_dir / "evaluate" / role
    spec_dir, results = work / "specs", work / "results"
    write_atomic(spec_dir / SPEC_FILE_NAME, spec_text)
    results.mkdir(parents=True, exist_ok=True)
    why_key = key_reason(model.name, None, request.image)
    if why_key and not key:
        raise ConfigError(
            f"TAO needs the encryption key (-k) to evaluate the {role}: {why_key}",
            where=str(model),
            fix="store the key in a Prefect Secret block and set key_block (or export TAO_KEY for `taoflow run`)",
        )
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
    return _plan(request, command, slots, f"{run_id}-evaluate-{role}", gpu_index=request.gpu_index[:1])


def _plan(request: TrainRequest, command, slots, run_id: str, gpu_index: list[int] | None = None) -> LaunchPlan:
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

