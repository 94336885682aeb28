"""Pre-flight before staging: blob training data validated where it lies, before any of it is downloaded.

A 50 GB dataset with one broken label file should cost seconds, not the whole transfer (and an
idle GPU): the validator needs only image headers and label files, which ranged reads fetch in
place (tasks.dataset.blob_reader). So the sequence is `preflight_in_place()` (the spec staged
alone, the blob training/validation data validated in place: a bad dataset ends the job here),
then every input staged, then `run_preflight()` on the staged copies (the spec check, the
TFRecords, the frame counts; the dataset again on the local copy, which costs a second and is
cached by content). `taoflow plan` and the flow run these same functions in this order.
"""

from __future__ import annotations

from typing import Callable

from tasks.dataset import DatasetValidation, ValidationReport, validate_dataset
from tasks.errors import TaoflowError
from tasks.job.preflight import container_rebasings, read_spec_text
from tasks.job.request import TrainRequest
from tasks.job.workspace import StagedInput, Workspace, stage_input
from tasks.spec import SpecFacts, extract_facts, parse_spec, rewrite_spec
from tasks.storage import StorageAccess, parse_location

DATA_INPUTS = ("training_data", "validation_data")


def in_place_inputs(request: TrainRequest) -> dict[str, str]:
    """The dataset inputs to validate where they lie: the training data when it is remote, with the
    validation data (remote or local) that goes with it.

    >>> request = TrainRequest(model_app_name="app", num_epochs=3, spec="az://specs/train.txt", output="az://models",
    ...     model_subfolder="r1", training_data={"location": "az://data/kitti", "spec_reference": "/ws/data"},
    ...     training_tfrecords={"location": "az://tfr/kitti", "spec_reference": "/ws/tfr"},
    ...     base_model={"location": "az://models/base", "spec_reference": "/ws/model"})
    >>> in_place_inputs(request)
    {'training_data': 'az://data/kitti'}
    """
    bindings = request.bindings()
    if "training_data" not in bindings or not parse_location(bindings["training_data"].location).is_remote:
        return {}
    return {name: bindings[name].location for name in DATA_INPUTS if name in bindings}


def dataset_facts(request: TrainRequest, spec: StagedInput) -> SpecFacts | None:
    """The facts the dataset rules need (sizes, classes, extensions, folder names) from the spec as
    the trainer will read it; None when the spec has a problem, which the full pre-flight reports
    after staging, as it always has."""
    try:
        text = read_spec_text(spec)
        rewritten = rewrite_spec(parse_spec(text, file=spec.location), container_rebasings(request),
                                 request.num_epochs, request.spec_overrides)
        return extract_facts(parse_spec(rewritten.text, file=spec.location))
    except TaoflowError:
        return None


def validate_in_place(request: TrainRequest, spec: StagedInput, access: StorageAccess | None = None, *,
                      strict: bool = False) -> ValidationReport | None:
    """The dataset validator on the blob training (and validation) data where it lies; None when
    there is nothing to validate in place (local data) or the spec must be judged first.

    The frame-count checks wait for the staged TFRecords (`run_preflight`), which may hold other counts.
    """
    inputs = in_place_inputs(request)
    facts = dataset_facts(request, spec) if inputs else None
    if facts is None:
        return None
    return validate_dataset(DatasetValidation(
        facts, inputs["training_data"], validation_data=inputs.get("validation_data"), strict=strict,
        gpus=request.num_gpus, access=access, frame_checks=False))


def preflight_in_place(
    request: TrainRequest,
    workspace: Workspace,
    access: StorageAccess | None = None,
    *,
    strict: bool = False,
    stage: Callable[..., StagedInput] = stage_input,
    validate: Callable[..., ValidationReport | None] = validate_in_place,
) -> ValidationReport | None:
    """Stage the spec alone and validate blob data in place; `stage` and `validate` may be their
    Prefect tasks. The report (its `to_error()` ends the job before staging), or None: local data is
    validated after staging as before.
    True
    """
    if not in_place_inputs(request):
        return None
    spec = stage("spec", request.spec, workspace, access)
    return validate(request, spec, access, strict=strict)
