"""Prefect wrappers for the launcher: run logger, progress and metrics artifacts, retries.

Thin on purpose: the logic is in `tasks.launch`; here the observer callbacks become log
records and artifacts, and the retry policy asks `retry_if_transient` (a crashed run that left
checkpoints is transient: the retry resumes from them).
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_progress_artifact, create_table_artifact, update_progress_artifact
from prefect.cache_policies import NO_CACHE
from prefect.exceptions import MissingContextError
from prefect.runtime import flow_run as current_run

from tasks.errors import retry_if_transient
from tasks.launch.base import CancelToken, JobObserver, Launcher
from tasks.launch.docker import DockerLauncher, reap_run
from tasks.launch.engine_build import EngineResult
from tasks.launch.evaluation import EvaluationResult
from tasks.launch.execute import run_conversion, run_evaluation, run_export, run_gen_trt_engine, run_prune, run_training
from tasks.launch.gpu_booking import BookingLauncher, GpuBroker
from tasks.launch.gpus import GpuHost
from tasks.launch.judge import ConvertResult, TrainResult
from tasks.launch.plan import LaunchPlan
from tasks.launch.prefect_slots import PrefectSlotLedger, server_configured
from tasks.launch.process import ProcessLauncher
from tasks.launch.prune_export import ExportResult, PruneResult
from tasks.launch.status import EpochEvent, ValidationEvent
from tasks.progress import TrainingProgress, report_training


def launcher_for(kind: str) -> BookingLauncher:
    """The launcher a flow run uses (`docker` or `process`): its GPU jobs first book GPUs of this
    host (its TAOFLOW_GPUS) on the Prefect server, as this flow run.

    Without a server (an ephemeral API) or GPUs declared, nothing is booked and the run says so.
    """
    host = GpuHost.from_env()
    inner = DockerLauncher(gpu_handover=host.handover) if kind == "docker" else ProcessLauncher()
    run_id, run_name = current_run.id, current_run.name
    ledger = PrefectSlotLedger(run_id) if server_configured() and host.mode == "slots" else None
    return BookingLauncher(inner, GpuBroker(host, ledger, f"flow run {run_name!r} ({run_id})", notice=_notice))


def _notice(message: str) -> None:
    try:
        get_run_logger().info(message)
    except MissingContextError:
        print(message)


def artifact_key(*parts: str) -> str:
    """Prefect keys allow lowercase letters, digits and dashes only."""
    return re.sub(r"[^a-z0-9-]+", "-", "-".join(parts).lower()).strip("-")


class ArtifactReporter:
    """Observer that logs every line and keeps the progress and metrics artifacts current."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.logger = get_run_logger()
        self.epochs: list[EpochEvent] = []
        self.validations: list[ValidationEvent] = []
        self.progress_id = create_progress_artifact(
            0.0, key=artifact_key(prefix, "progress"), description="DetectNet_v2 training: waiting for the first epoch"
        )

    def observer(self) -> JobObserver:
        return JobObserver(
            on_line=self.logger.info,
            on_epoch=self.on_epoch,
            on_validation=self.on_validation,
            on_pull=lambda text: self.logger.info("pull: %s", text),
            on_warning=self.logger.warning,
        )

    def on_epoch(self, event: EpochEvent) -> None:
        self.epochs.append(event)
        update_progress_artifact(
            self.progress_id,
            event.progress,
            description=f"{event.epoch} of {event.max_epoch} epochs done, loss {event.loss}, ETA {event.eta}",
        )
        report_training(TrainingProgress(event, self._last_map()))

    def on_validation(self, event: ValidationEvent) -> None:
        self.validations.append(event)
        if self.epochs:
            last = self.epochs[-1]
            reached = replace(last, epoch=max(last.epoch, event.epoch or 0))
            report_training(TrainingProgress(reached, event.mean_average_precision))

    def _last_map(self) -> float | None:
        return self.validations[-1].mean_average_precision if self.validations else None

    def completed(self, result: TrainResult) -> None:
        """A complete run is 100 %, whichever way TAO numbered its epoch lines; the metrics of a
        re-run that trained nothing are those already in the results folder."""
        self.validations = list(result.validations)
        final = f", final mAP {result.final_map:.2f} %" if result.final_map is not None else ""
        update_progress_artifact(
            self.progress_id, 100.0, description=f"complete: {result.num_epochs} of {result.num_epochs} epochs{final}"
        )
        report_training(TrainingProgress(EpochEvent(result.num_epochs, result.num_epochs), result.final_map, done=True))

    def publish_tables(self) -> None:
        """One row per epoch and one per validation; written also when the run failed."""
        if self.epochs:
            create_table_artifact(
                [
                    {"epoch": e.epoch, "max_epoch": e.max_epoch, "loss": e.loss, "learning_rate": e.learning_rate, "eta": e.eta}
                    for e in self.epochs
                ],
                key=artifact_key(self.prefix, "epochs"),
                description="Training loss and learning rate per epoch",
            )
        if self.validations:
            classes = sorted({c for v in self.validations for c in v.average_precision})
            rows: list[dict[str, Any]] = []
            for v in self.validations:
                row: dict[str, Any] = {"epoch": v.epoch, "mAP (%)": v.mean_average_precision}
                row |= {f"AP {c} (%)": v.average_precision.get(c) for c in classes}
                rows.append(row)
            create_table_artifact(
                rows, key=artifact_key(self.prefix, "metrics"), description="Validation mAP and per-class AP"
            )


#: Both jobs: retried only when a retry can help (engine back, crash with checkpoints); never cached,
#: a job's results live in its results folder, not in Prefect's result store.
JOB_TASK_OPTIONS = dict(
    retries=2, retry_delay_seconds=10, retry_condition_fn=retry_if_transient, cache_policy=NO_CACHE, persist_result=False
)


@task(name="detectnet_v2-train", **JOB_TASK_OPTIONS)
def train_detectnet_v2(
    plan: LaunchPlan,
    launcher: Launcher | None = None,
    artifact_prefix: str = "detectnet-v2",
    cancel: CancelToken | None = None,
) -> TrainResult:
    """Run `detectnet_v2 train` from a plan; progress and metrics become artifacts."""
    reporter = ArtifactReporter(artifact_prefix)
    reporter.logger.info("launching: %s", " ".join(plan.command.display_argv()))
    try:
        result = run_training(plan, launcher or DockerLauncher(), reporter.observer(), cancel)
        reporter.completed(result)
        return result
    finally:
        reporter.publish_tables()


@task(name="detectnet_v2-dataset_convert", **JOB_TASK_OPTIONS)
def convert_dataset(plan: LaunchPlan, launcher: Launcher | None = None, cancel: CancelToken | None = None) -> ConvertResult:
    """Run `detectnet_v2 dataset_convert` from a plan; every log line goes to the run log."""
    logger = get_run_logger()
    logger.info("launching: %s", " ".join(plan.command.display_argv()))
    result = run_conversion(plan, launcher or DockerLauncher(), JobObserver(on_line=logger.info, on_warning=logger.warning), cancel)
    logger.info("dataset_convert wrote %d file(s)", len(result.output_files))
    return result


@task(name="detectnet_v2-evaluate", task_run_name="evaluate-{role}", **JOB_TASK_OPTIONS)
def evaluate_detectnet_v2(
    plan: LaunchPlan, launcher: Launcher | None = None, role: str = "challenger", cancel: CancelToken | None = None
) -> EvaluationResult:
    """Run `detectnet_v2 evaluate` from a plan; every log line goes to the run log, the metrics to a table."""
    logger = get_run_logger()
    logger.info("launching: %s", " ".join(plan.command.display_argv()))
    result = run_evaluation(plan, launcher or DockerLauncher(), JobObserver(on_line=logger.info, on_warning=logger.warning),
                            cancel)
    logger.info("%s: mAP %.4f %% on the held-out data (%s)", role, result.mean_average_precision,
                ", ".join(f"{c} {ap:.4f}" for c, ap in sorted(result.average_precision.items())))
    return result


_CHAIN_STEPS = {"prune": run_prune, "export": run_export, "gen_trt_engine": run_gen_trt_engine}


@task(name="detectnet_v2-chain-step", task_run_name="{step}", **JOB_TASK_OPTIONS)
def chain_step(plan: LaunchPlan, launcher: Launcher, step: str, cancel: CancelToken | None = None
               ) -> PruneResult | ExportResult | EngineResult:
    """Run one step of the chain after training (prune, export, gen_trt_engine) from its plan, judged
    as NVIDIA's code ends it; every log line goes to the run log."""
    logger = get_run_logger()
    logger.info("launching: %s", " ".join(plan.command.display_argv()))
    return _CHAIN_STEPS[plan.command.subtask](plan, launcher, JobObserver(on_line=logger.info,
                                                                          on_warning=logger.warning), cancel)


#: The run ids a run's jobs are labelled with (train, and the jobs beside it).
JOB_RUN_SUFFIXES = ("", "-convert", "-evaluate-challenger", "-evaluate-champion", "-evaluate-unpruned",
                    "-evaluate-retrained", "-prune", "-retrain", "-export", "-engine")


def reap_run_containers(run_id: str) -> int:
    """Remove every container of a run (train, dataset_convert, evaluate); used by flow hooks.

    Best effort by design: a hook must not fail because no engine is reachable any more.
    """
    try:
        client = DockerLauncher().engine()
    except Exception:  # noqa: BLE001 - no engine, nothing to reap
        return 0
    return sum(reap_run(client, run_id + suffix) for suffix in JOB_RUN_SUFFIXES)
