"""The training flow's steps, one call each: flows/train.py reads as the pipeline (stage ->
pre-flight -> convert -> train -> the chain -> evaluate -> publish -> promote) and each step here
composes the plain functions of `tasks/` and their thin Prefect tasks, keeping the run's bookkeeping
(the result being built, timings, artifacts) in `JobRun` (flows/job_run.py).
"""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger
from prefect.artifacts import create_link_artifact, create_markdown_artifact
from prefect.states import Completed, State

from flows.chain_steps import Shipped
from flows.job_run import JobRun, display
from tasks.files import write_atomic
from tasks.job.inplace import preflight_in_place
from tasks.job.job_tasks import (
    prepare_spec_task,
    resolve_key,
    stage_all,
    stage_input_task,
    validate_in_place_task,
    validate_inputs_task,
)
from tasks.job.outcome import JobResult
from tasks.job.plans import finish_conversion, plan_conversion, plan_training
from tasks.job.preflight import Preflight, input_locations, run_preflight
from tasks.job.promotion_policy import Metrics
from tasks.job.version_tree import assemble_version
from tasks.job.workspace import StagedInput
from tasks.launch import LaunchPlan, TrainResult
from tasks.launch.launch_tasks import convert_dataset, train_detectnet_v2
from tasks.registry import CARD_FILE, ModelCard
from tasks.registry.card import CardFacts, build_card
from tasks.registry.registry_tasks import (
    Judged,
    check_claim_task,
    claim_version_task,
    comparison,
    evaluate_and_judge,
    promote_task,
)
from tasks.report import REPORT_DATA, REPORT_HTML, RunReport
from tasks.report.artifacts import report_dataset, report_results
from tasks.storage import parse_location
from tasks.storage.sync_tasks import fingerprint_task, sync_up_task

#: What the run writes into its version itself (never taken from a step's folder).
OWN_FILES = frozenset({CARD_FILE, REPORT_DATA, REPORT_HTML})


def check_in_place(job: JobRun, *, strict: bool) -> None:
    """Blob training data validated where it lies, before staging downloads any of it: a bad
    dataset ends the run here (tasks.job.inplace)."""
    report = preflight_in_place(job.request, job.workspace, job.access, strict=strict, stage=stage_input_task,
                                validate=validate_in_place_task)
    if report is None:
        return
    job.validation_summary = report.summary()
    error = report.to_error()
    if error is not None:
        create_markdown_artifact(report.to_markdown(), key="dataset-validation", description=job.validation_summary)
        raise error
    job.lap("validate in place")


def stage(job: JobRun) -> dict[str, StagedInput]:
    """Every input made local, in parallel (remote: incremental sync into the cache)."""
    job.staged = stage_all(input_locations(job.request), job.workspace, job.access)
    job.lap("stage")
    return job.staged


def check(job: JobRun, *, strict: bool, dry_run: bool) -> Preflight:
    """Pre-flight, before any container: the spec, the dataset, the base model; then the version folder
    is claimed for this run. A finding that stops training ends the run here (a dry run only reports
    the base model, and claims nothing)."""
    checked = run_preflight(job.request, job.staged, strict=strict, prepare=prepare_spec_task, validate=validate_inputs_task)
    job.result.spec_diff = checked.prepared.diff
    job.validation_summary = checked.validation.summary()
    create_markdown_artifact(checked.validation.to_markdown(), key="dataset-validation",
                             description=job.validation_summary)
    error = checked.error(dry_run=dry_run)
    if error is not None:
        raise error
    if not dry_run:
        claim_version_task(job.app, job.request.model_subfolder, job.run_id, job.access)
    job.lap("validate")
    return checked


def draw_dataset(job: JobRun, checked: Preflight) -> RunReport:
    """The report's first pictures (the dataset, sample frames), shown even if training fails later."""
    report = RunReport(title=f"{job.request.model_app_name} / {job.request.model_name}", run_id=job.run_id,
                       results_location=job.result.results_location)
    data = job.staged["training_data"]
    return report_dataset(report, data.path, checked.prepared.host_facts.target_class_mapping, data.location)


def plan_launch(job: JobRun, checked: Preflight) -> LaunchPlan:
    """The training container's launch plan, as the run shows it (the key resolved only here, never a
    parameter); the training itself runs in its step folder (`train`)."""
    job.key = resolve_key(job.request)
    plan = plan_training(job.request, checked.prepared, job.staged, job.run_dir, job.run_id, key=job.key)
    job.result.launch_plan = plan.render()
    return plan


def planned(job: JobRun, checked: Preflight) -> JobResult:
    """A dry run's result: the plan, and what would stop or precede training."""
    job.result.would_stop = [p.to_dict() for p in checked.would_stop]
    if checked.conversion:
        job.result.notes.append(f"dataset_convert would run first: {checked.conversion}")
    job.result.status, job.result.note = "planned", "dry run: stopped after validation, nothing was launched"
    return job.result


def convert(job: JobRun, checked: Preflight) -> None:
    """dataset_convert when the TFRecords are missing or were made from other data; published beside
    the data, and the staged TFRecords are then the converted ones."""
    if not checked.conversion:
        return
    get_run_logger().info("dataset_convert: %s", checked.conversion)
    convert_plan, out_dir = plan_conversion(job.request, checked.prepared, job.staged, job.run_dir, job.run_id)
    convert_dataset(convert_plan, job.launcher)
    data = job.staged["training_data"]
    finish_conversion(out_dir, data.fingerprint)
    location = job.request.training_tfrecords.location
    sync_up_task(out_dir, location, job.access)
    tfrecords = job.staged["training_tfrecords"]
    # Their content hash as a later run's staging will see it: the training step's key must not change
    # between the run that converted and a run that finds them converted.
    job.staged["training_tfrecords"] = StagedInput(tfrecords.name, tfrecords.location, out_dir,
                                                   fingerprint_task(location, job.access), remote=False)
    job.result.converted_tfrecords = True
    job.lap("dataset_convert")


def train(job: JobRun, checked: Preflight) -> TrainResult:
    """`detectnet_v2 train` in its step folder, a retry resuming from the newest checkpoint; a run with
    the same spec, data, base model and image reuses a completed training without a container."""
    request = job.request
    trained = job.cached(
        "train", TrainResult,
        lambda folder: plan_training(request, checked.prepared, job.staged, folder, job.run_id, key=job.key)
        .with_options(resume=True),
        lambda plan: train_detectnet_v2(plan, job.launcher),
        texts={"spec": checked.prepared.text}, inputs=job.fingerprints(request.training_bindings()))
    job.result.final_map, job.result.per_class_ap = trained.final_map, trained.per_class_ap
    job.result.epochs_run = trained.completed_epochs
    job.lap("train")
    return trained


def evaluate(job: JobRun, checked: Preflight, shipped: Shipped) -> Judged:
    """The model that ships and the champion, evaluated on the same held-out data, and the verdict."""
    judged = evaluate_and_judge(job.contest(checked), shipped.challenger)
    job.lap("evaluate")
    return judged


def publish(job: JobRun, checked: Preflight, trained: TrainResult, shipped: Shipped, judged: Judged,
            pictures: RunReport) -> ModelCard:
    """The version assembled (training's results, each later step's under chain/), its card and report,
    then published (marker last) after the claim is checked once more."""
    tree = assemble_version(job.run_dir, trained.results_dir, shipped.folders, job.run_id, own=OWN_FILES)
    model = shipped.published_path(trained)
    final = trained.final_validation
    card = build_card(CardFacts(
        request=job.request, run_id=job.run_id, model=model, evaluation=judged.evaluation(),
        training_validation=Metrics(mean_average_precision=final.mean_average_precision,
                                    average_precision=final.average_precision)
        if final is not None and final.mean_average_precision is not None else None,
        staged=job.staged, spec_text=checked.prepared.text,
        pretrained_model_file=checked.prepared.facts.pretrained_model_file, num_epochs=trained.num_epochs,
        verdict=judged.verdict, compared_with=judged.champion.version if judged.champion else None,
        image_digest=job.launcher.image_digest(job.request.image), chain=shipped.record(tree, trained, judged)))
    write_atomic(tree / CARD_FILE, card.to_json())
    report_results(pictures, tree, comparison(judged), chain=card.chain)
    check_claim_task(job.app, job.request.model_subfolder, job.run_id, job.access)
    published = sync_up_task(tree, job.request.results_location, job.access)
    job.result.status = "trained"
    job.result.model_location = display(str(parse_location(job.request.results_location).child(*model.split("/"))))
    create_link_artifact(_link(job.result.model_location), link_text=f"{job.request.model_name} ({model})",
                         key="trained-model", description=published.summary())
    job.lap("publish")
    return card


def promote(job: JobRun, card: ModelCard, judged: Judged) -> State:
    """The champion pointer moved (or not); the run ends Completed as "Promoted" or "Not promoted"."""
    job.result.promotion = promote_task(job.app, card, judged, job.access)
    job.lap("promote")
    return Completed(name=job.result.promotion.state_name, message=job.result.promotion.message, data=job.result)


def _link(location: str) -> str:
    return location if "://" in location else Path(location).as_uri()
