"""`train_detectnet_v2`: from data in Azure (or on disk) to a published DetectNet_v2 model.

Only composition lives here: each step is a plain function in `tasks/` behind a thin task.
Order: stage inputs (parallel, content-cached) -> rewrite + check the spec -> validate the
dataset (fail here, on a CPU, before any container exists) -> dataset_convert when the TFRecords
are missing or stale -> train (a retry resumes from the last checkpoint) -> evaluate the new model
and the champion on the same held-out data -> publish atomically, with the model card -> promote
(swap the champion pointer, or say per class why not). A run ends `Completed` with the state name
"Promoted" or "Not promoted" (automations can act on it, docs/deploy.md); a run killed before the
promotion leaves the old champion in place.
"""

import time
import uuid
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_link_artifact, create_markdown_artifact
from prefect.runtime import flow_run as current_run
from prefect.states import Completed

from tasks.errors import DatasetError, TaoflowError
from tasks.job.job_tasks import (
    prepare_spec_task,
    resolve_key,
    stage_all,
    validate_inputs_task,
)
from tasks.job.outcome import JobResult, render_summary
from tasks.job.request import TrainRequest
from tasks.job.steps import (
    base_model_problems,
    conversion_reason,
    evaluation_spec,
    finish_conversion,
    input_locations,
    plan_conversion,
    plan_training,
)
from tasks.job.workspace import StagedInput, Workspace
from tasks.launch import DockerLauncher, ProcessLauncher
from tasks.launch.launch_tasks import convert_dataset, reap_run_containers
from tasks.launch.launch_tasks import train_detectnet_v2 as train_task
from tasks.registry import app_location, held_out
from tasks.registry.promotion import version_for_run
from tasks.registry.registry_tasks import (
    comparison,
    evaluate_and_judge,
    guard_champion_folder_task,
    image_digest,
    promote_task,
    write_model_card,
)
from tasks.report import RunReport
from tasks.report.artifacts import report_dataset, report_results
from tasks.storage import StorageAccess, parse_location
from tasks.storage.task import sync_up_task


def _reap(flow, flow_run, state) -> None:
    """on_cancellation/on_crashed: the container belongs to dockerd, not to the flow process."""
    reap_run_containers(str(flow_run.id))


@flow(
    name="train-detectnet-v2",
    description="Retrain a TAO DetectNet_v2 detector: stage, rewrite, validate, (convert), train, evaluate against "
    "the champion, publish, promote.",
    on_cancellation=[_reap],
    on_crashed=[_reap],
)
def train_detectnet_v2(request: TrainRequest, dry_run: bool = False, strict: bool = False) -> JobResult:
    """Train, evaluate against the champion, publish and promote a DetectNet_v2 model; with dry_run,
    stop after validation with the launch plan. Calling it returns the `JobResult`; its final state
    is named "Promoted" or "Not promoted".

    Args:
        request: the job: inputs with the spec paths they replace, epochs, output, TAO options.
        dry_run: stop before any container starts and return the launch plan.
        strict: treat dataset warnings (e.g. classes the spec does not map) as errors.
    """
    logger = get_run_logger()
    run_id = str(current_run.id or uuid.uuid4())
    request = version_for_run(request, current_run.scheduled_start_time)
    app = app_location(request.output, request.model_app_name)
    workspace = Workspace.default()
    run_dir = workspace.run_dir(run_id)
    access = StorageAccess(credentials=request.storage_credentials)
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(step: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[step] = round(now - clock, 2)
        clock = now

    staged: dict[str, StagedInput] = {}
    validation_summary = "not validated"
    result = JobResult(status="failed", run_id=run_id, results_location=_display(request.results_location))
    try:
        staged = stage_all(input_locations(request), workspace, access)
        lap("stage")
        prepared = prepare_spec_task(request, staged)
        result.spec_diff = prepared.diff
        reason = conversion_reason(request, staged)
        # Before any container: a held-out set the spec cannot use, a run aimed at the champion's folder.
        eval_spec = evaluation_spec(request, staged, prepared)
        guard_champion_folder_task(app, request.model_subfolder, run_id, access)
        validation = validate_inputs_task(request, prepared, staged, check_tfrecords=reason is None, strict=strict)
        validation_summary = validation.summary()
        create_markdown_artifact(validation.to_markdown(), key="dataset-validation", description=validation_summary)
        pictures = report_dataset(RunReport(title=f"{request.model_app_name} / {request.model_name}", run_id=run_id,
                                            results_location=_display(request.results_location)),
                                  staged["training_data"].path, prepared.host_facts.target_class_mapping,
                                  staged["training_data"].location)
        problems = base_model_problems(prepared)
        if validation.to_error() is not None:
            raise validation.to_error()
        if problems and not dry_run:
            raise DatasetError("the base model is not usable", problems=problems,
                               fix="fix base_model.location or the spec's pretrained_model_file")
        lap("validate")

        key = resolve_key(request)
        plan = plan_training(request, prepared, staged, run_dir, run_id, key=key)
        result.launch_plan = plan.render()
        if dry_run:
            result.would_stop = [p.to_dict() for p in problems]
            if reason:
                result.notes.append(f"dataset_convert would run first: {reason}")
            result.status, result.note = "planned", "dry run: stopped after validation, nothing was launched"
            return result
        launcher = DockerLauncher() if request.launcher == "docker" else ProcessLauncher()

        if reason:
            logger.info("dataset_convert: %s", reason)
            convert_plan, out_dir = plan_conversion(request, prepared, staged, run_dir, run_id)
            convert_dataset(convert_plan, launcher)
            finish_conversion(out_dir, staged["training_data"].fingerprint)
            sync_up_task(out_dir, request.training_tfrecords.location, access)
            staged["training_tfrecords"] = StagedInput("training_tfrecords", staged["training_tfrecords"].location,
                                                       out_dir, staged["training_data"].fingerprint, remote=False)
            plan = plan_training(request, prepared, staged, run_dir, run_id, key=key)
            result.converted_tfrecords = True
            lap("dataset_convert")

        trained = train_task(plan, launcher)
        lap("train")
        judged = evaluate_and_judge(
            app=app, request=request, eval_spec=eval_spec.text, staged=staged, trained=trained,
            held_out=held_out(request, staged, eval_spec.facts.has_validation_data_source, eval_spec.facts.validation_fold),
            workspace=workspace, run_dir=run_dir, run_id=run_id, launcher=launcher, access=access, key=key)
        lap("evaluate")
        card = write_model_card(judged, request=request, run_id=run_id, trained=trained, staged=staged,
                                spec_text=prepared.text, pretrained_model_file=prepared.facts.pretrained_model_file,
                                digest=image_digest(launcher, request.image))
        report_results(pictures, trained.results_dir, comparison(judged))
        published = sync_up_task(trained.results_dir, request.results_location, access)
        lap("publish")
        model_rel = trained.model_path.relative_to(trained.results_dir).as_posix()
        result.status = "trained"
        result.model_location = _display(_child(request.results_location, model_rel))
        result.final_map = trained.final_map
        result.per_class_ap = trained.per_class_ap
        result.epochs_run = trained.completed_epochs
        create_link_artifact(_link(result.model_location), link_text=f"{request.model_name} ({model_rel})",
                             key="trained-model", description=published.summary())
        result.promotion = promote_task(app, card, judged, access)
        lap("promote")
        return Completed(name=result.promotion.state_name, message=result.promotion.message, data=result)
    except BaseException as exc:
        result.note = f"failed: {exc.what if isinstance(exc, TaoflowError) else type(exc).__name__}"
        raise
    finally:
        result.timings = timings
        create_markdown_artifact(
            render_summary(result=result, staged=staged, validation_summary=validation_summary),
            key="train-summary",
            description=f"DetectNet_v2 training {result.status}",
        )


@flow(name="train-detectnet-v2-from-component-inputs")
def train_from_component_inputs(inputs: dict[str, Any], dry_run: bool = False) -> JobResult:
    """Migration path: the AzureML component's flat inputs, by their names, unchanged."""
    state = train_detectnet_v2(TrainRequest.from_component_inputs(inputs), dry_run=dry_run, return_state=True)
    # Keep the inner run's "Promoted" / "Not promoted" on this run too.
    return Completed(name=state.name, message=state.message, data=state.result())


def _child(location: str, relative: str) -> str:
    return str(parse_location(location).child(*relative.split("/")))


def _display(location: str) -> str:
    return parse_location(location).display


def _link(location: str) -> str:
    return location if "://" in location else Path(location).as_uri()
