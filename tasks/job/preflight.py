"""Pre-flight: everything a job checks before any container exists, as plain functions.

The sequence is `run_preflight()`, written once: `taoflow plan` runs it with the plain steps (no
server, no GPU), the flow with the same steps as Prefect tasks (cached, observable). Order: the
spec rewritten onto the container mounts and checked -> whether dataset_convert must run first ->
the spec `evaluate` reads -> the dataset validated against the spec's facts -> the base model.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

from tasks.dataset import DatasetValidation, ValidationReport, validate_dataset
from tasks.dataset.tfrecords import any_shard
from tasks.errors import ConfigError, DatasetError, Problem, SpecError
from tasks.job.request import TrainRequest
from tasks.job.workspace import StagedInput
from tasks.launch.slots import Slot, container_path
from tasks.spec import SpecFacts, extract_facts, parse_spec, require_valid, rewrite_spec

#: Written beside TFRecords taoflow made: which dataset content they were made from.
TFRECORDS_SOURCE_FILE = ".taoflow-dataset.json"  # a dot-file: TAO's glob.glob skips it


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
    """Every input to stage, by name: the spec and each data binding.

    >>> from tasks.job.request import TrainRequest
    >>> request = TrainRequest(model_app_name="app", num_epochs=3, spec="az://specs/train.txt", output="az://models",
    ...     model_subfolder="r1", training_data={"location": "az://data/kitti", "spec_reference": "/ws/data"},
    ...     training_tfrecords={"location": "az://tfr/kitti", "spec_reference": "/ws/tfr"},
    ...     base_model={"location": "az://models/base", "spec_reference": "/ws/model"})
    >>> sorted(input_locations(request))
    ['base_model', 'spec', 'training_data', 'training_tfrecords']
    """
    locations = {"spec": request.spec}
    locations.update({name: b.location for name, b in request.bindings().items()})
    if request.dataset_convert_spec:
        locations["dataset_convert_spec"] = request.dataset_convert_spec
    if request.chain.export.enabled and request.chain.export.calibration.image_dir:
        locations["calibration_images"] = request.chain.export.calibration.image_dir
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
        # Decoded, not read as text: the line ends stay as written (a CRLF or CR file is rewritten
        # byte for byte but for its paths); the parser reads \r\n, \r and \n as TAO's open() does.
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"{staged_spec.location} is not UTF-8 text (byte {exc.start})", where=staged_spec.location,
                        fix="save the spec as UTF-8 text") from None


def prepare_spec(request: TrainRequest, staged: Mapping[str, StagedInput], *, evaluation: bool = False) -> PreparedSpec:
    """Rewrite the spec onto the container mounts, set the epochs, and check what TAO will read.

    With `evaluation`, the spec `evaluate` reads: the same, with the request's `evaluation_data`
    (when given) in place of the spec's validation_data_source.

    >>> import tempfile
    >>> from tasks.job.demo import demo_inputs
    >>> root = Path(tempfile.mkdtemp())
    >>> request, staged = demo_inputs(root)
    >>> "+  num_epochs: 3" in prepare_spec(request, staged).diff
    True
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

    return validate_dataset(DatasetValidation(
        prepared.host_facts,
        staged["training_data"].path,
        strict=strict,
        validation_data=path("validation_data"),
        tfrecords=path("training_tfrecords") if check_tfrecords else None,
        validation_tfrecords=path("validation_tfrecords") if check_tfrecords else None,
        gpus=request.num_gpus,
    ))


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


@dataclass(frozen=True)
class Preflight:
    """What pre-flight found: the spec as TAO reads it (and as evaluate reads it), whether
    dataset_convert runs first and why, the dataset report, and findings that would stop training."""

    prepared: PreparedSpec
    evaluation: PreparedSpec
    conversion: str | None
    validation: ValidationReport
    would_stop: list[Problem]

    def error(self, *, dry_run: bool = False):
        """The error that ends the job here, or None (a dry run reports what would stop it)."""
        if self.validation.to_error() is not None:
            return self.validation.to_error()
        if self.would_stop and not dry_run:
            return DatasetError("the base model is not usable", problems=self.would_stop,
                                fix="fix base_model.location or the spec's pretrained_model_file")
        return None


def run_preflight(
    request: TrainRequest,
    staged: Mapping[str, StagedInput],
    *,
    strict: bool = False,
    prepare: Callable[..., PreparedSpec] = prepare_spec,
    validate: Callable[..., ValidationReport] = validate_inputs,
) -> Preflight:
    """The pre-flight sequence on staged inputs; `prepare` and `validate` may be their Prefect tasks.

    >>> import tempfile
    >>> from tasks.job.demo import demo_inputs
    >>> root = Path(tempfile.mkdtemp())
    >>> request, staged = demo_inputs(root)
    >>> checked = run_preflight(request, staged)
    >>> checked.conversion, [p.code for p in checked.would_stop]
    ('the TFRecords location is empty', ['base-model-missing'])
    """
    prepared = prepare(request, staged)
    conversion = conversion_reason(request, staged)
    evaluation = evaluation_spec(request, staged, prepared)
    validation = validate(request, prepared, staged, check_tfrecords=conversion is None, strict=strict)
    return Preflight(prepared, evaluation, conversion, validation, base_model_problems(prepared))
