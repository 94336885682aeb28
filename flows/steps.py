"""The training flow's steps, one call each: flows/train.py reads as the pipeline (stage ->
pre-flight -> convert -> train -> evaluate -> publish -> promote) and each step here composes the
plain functions of `tasks/` and their thin Prefect tasks, keeping the run's bookkeeping (the
result being built, timings, artifacts) out of the flow's body.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path

from prefect import get_run_logger
from prefect.artifacts import create_link_artifact, create_markdown_artifact
from prefect.states import Completed, State

from tasks.errors import TaoflowError
from tasks.job.inplace import preflight_in_place
from tasks.job.job_tasks import (
    prepare_spec_task,
    resolve_key,
    stage_all,
    stage_input_task,
    validate_in_place_task,
    validate_inputs_task,
)
from tasks.job.outcome import JobResult, render_summary
from tasks.job.plans import finish_conversion, plan_conversion, plan_training
from tasks.job.preflight import Preflight, input_locations, run_preflight
from tasks.job.request import TrainRequest
from tasks.job.workspace import StagedInput, Workspace
from tasks.launch import Launcher, LaunchPlan, TrainResult
from tasks.launch.launch_tasks import convert_dataset, launcher_for, train_detectnet_v2
from tasks.registry import ModelCard, app_location, held_out, version_for_run
from tasks.registry.registry_tasks import (
    Judged,
    check_claim_task,
    claim_version_task,
    comparison,
    evaluate_and_judge,
    promote_task,
    write_model_card,
)
from tasks.report import RunReport
from tasks.report.artifacts import report_dataset, report_results
from tasks.storage import StorageAccess, parse_location
from tasks.storage.sync_tasks import sync_up_task


@dataclass
class JobRun:
    """One run of the training flow: its request, id, folders, storage access and launcher, and the
    result it builds up step by step."""

    request: TrainRequest
    run_id: str
    workspace: Workspace
    access: StorageAccess
    result: JobResult
    staged: dict[str, StagedInput] = field(default_factory=dict)
    validation_summary: str = "not validated"
    key: str | None = None
    _clock: float = field(default_factory=time.perf_counter)

    @classmethod
    def start(cls, request: TrainRequest, run_id: object, scheduled: datetime | None) -> "JobRun":
        """A scheduled run publishes into its own version folder (`subfolder_per_run`)."""
        run_id = str(run_id or uuid.uuid4())
        request = version_for_run(request, scheduled, run_id)
        result = JobResult(status="failed", run_id=run_id, results_location=_display(request.results_location))
        return cls(request, run_id, Workspace.default(), StorageAccess(credentials=request.storage_credentials), result)

    @property
    def run_dir(self) -> Path:
        return self.workspace.run_dir(self.run_id)

    @property
    def app(self) -> str:
        """OUTPUT/MODEL_APP_NAME: the registry of this application's models."""
        return app_location(self.request.output, self.request.model_app_name)

    @cached_property
    def launcher(self) -> Launcher:
        """The launcher of every container of this run; its GPU jobs book this host's GPUs first."""
        return launcher_for(self.request.launcher)

    def lap(self, step: str) -> None:
        now = time.perf_counter()
        self.result.timings[step] = round(now - self._clock, 2)
        self._clock = now

    def failed(self, exc: BaseException) -> None:
        self.result.note = f"failed: {exc.what if isinstance(exc, TaoflowError) else type(exc).__name__}"

    def write_summary(self) -> None:
        """The run's markdown summary, also when it failed."""
        create_markdown_artifact(
            render_summary(result=self.result, staged=self.staged, validation_summary=self.validation_summary),
            key="train-summary", description=f"DetectNet_v2 training {self.result.status}",
        )


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
    """The training container's launch plan (the key resolved only here, never a parameter)."""
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


def convert(job: JobRun, checked: Preflight, plan: LaunchPlan) -> LaunchPlan:
    """dataset_convert when the TFRecords are missing or were made from other data; published beside
    the data. Returns the training plan on the TFRecords to use."""
    if not checked.conversion:
        return plan
    get_run_logger().info("dataset_convert: %s", checked.conversion)
    convert_plan, out_dir = plan_conversion(job.request, checked.prepared, job.staged, job.run_dir, job.run_id)
    convert_dataset(convert_plan, job.launcher)
    data = job.staged["training_data"]
    finish_conversion(out_dir, data.fingerprint)
    sync_up_task(out_dir, job.request.training_tfrecords.location, job.access)
    tfrecords = job.staged["training_tfrecords"]
    job.staged["training_tfrecords"] = StagedInput(tfrecords.name, tfrecords.location, out_dir, data.fingerprint,
                                                   remote=False)
    job.result.converted_tfrecords = True
    job.lap("dataset_convert")
    return plan_training(job.request, checked.prepared, job.staged, job.run_dir, job.run_id, key=job.key)


def train(job: JobRun, plan: LaunchPlan) -> TrainResult:
    """`detectnet_v2 train`, a retry resuming from the newest checkpoint."""
    trained = train_detectnet_v2(plan, job.launcher)
    job.result.final_map, job.result.per_class_ap = trained.final_map, trained.per_class_ap
    job.result.epochs_run = trained.completed_epochs
    job.lap("train")
    return trained


def evaluate(job: JobRun, checked: Preflight, trained: TrainResult) -> Judged:
    """The new model and the champion, evaluated on the same held-out data, and the verdict."""
    facts = checked.evaluation.facts
    judged = evaluate_and_judge(
        app=job.app, request=job.request, eval_spec=checked.evaluation.text, staged=job.staged, trained=trained,
        held_out=held_out(job.request, job.staged, facts.has_validation_data_source, facts.validation_fold),
        workspace=job.workspace, run_dir=job.run_dir, run_id=job.run_id, launcher=job.launcher, access=job.access,
        key=job.key)
    job.lap("evaluate")
    return judged


def publish(job: JobRun, checked: Preflight, trained: TrainResult, judged: Judged, pictures: RunReport) -> ModelCard:
    """The model card and the report into the results folder, then the folder published (marker last)."""
    card = write_model_card(judged, request=job.request, run_id=job.run_id, trained=trained, staged=job.staged,
                            spec_text=checked.prepared.text,
                            pretrained_model_file=checked.prepared.facts.pretrained_model_file,
                            digest=job.launcher.image_digest(job.request.image))
    report_results(pictures, trained.results_dir, comparison(judged))
    check_claim_task(job.app, job.request.model_subfolder, job.run_id, job.access)
    published = sync_up_task(trained.results_dir, job.request.results_location, job.access)
    model = trained.model_path.relative_to(trained.results_dir).as_posix()
    job.result.status = "trained"
    job.result.model_location = _display(str(parse_location(job.request.results_location).child(*model.split("/"))))
    create_link_artifact(_link(job.result.model_location), link_text=f"{job.request.model_name} ({model})",
                         key="trained-model", description=published.summary())
    job.lap("publish")
    return card


def promote(job: JobRun, card: ModelCard, judged: Judged) -> State:
    """The champion pointer moved (or not); the run ends Completed as "Promoted" or "Not promoted"."""
    job.result.promotion = promote_task(job.app, card, judged, job.access)
    job.lap("promote")
    return Completed(name=job.result.promotion.state_name, message=job.result.promotion.message, data=job.result)


def _display(location: str) -> str:
    return parse_location(location).display


def _link(location: str) -> str:
    return location if "://" in location else Path(location).as_uri()
