"""Run and judge in one call: what the flow, the CLI and the Prefect wrapper use."""

from __future__ import annotations

import dataclasses
from typing import Callable, TypeVar

from tasks.errors import LaunchError
from tasks.launch.base import CancelToken, JobObserver, JobOutcome, Launcher
from tasks.launch.chain_commands import prepare_outputs
from tasks.launch.engine_build import EngineResult, judge_gen_trt_engine
from tasks.launch.evaluation import EvaluationResult, judge_evaluation
from tasks.launch.judge import ConvertResult, TrainResult, judge_conversion, judge_training
from tasks.launch.plan import LaunchPlan
from tasks.launch.prune_export import ExportResult, PruneResult, judge_export, judge_prune

Result = TypeVar("Result")


def run_training(
    plan: LaunchPlan, launcher: Launcher, observer: JobObserver | None = None, cancel: CancelToken | None = None
) -> TrainResult:
    """`detectnet_v2 train` to its end; TrainingFailed (resumable when checkpoints exist) otherwise.

    With a Docker engine that has the TAO image (`plan` from `build_plan`):

    >>> run_training(plan, DockerLauncher()).final_map  # doctest: +SKIP
    65.0
    """
    return _run_and_judge("train", judge_training, plan, launcher, observer, cancel)


def run_conversion(
    plan: LaunchPlan, launcher: Launcher, observer: JobObserver | None = None, cancel: CancelToken | None = None
) -> ConvertResult:
    """`detectnet_v2 dataset_convert`; LaunchError unless the TFRecord shards were written.

    >>> [p.name for p in run_conversion(plan, launcher).output_files][:1]  # doctest: +SKIP
    ['kitti_trainval-fold-000-of-002-shard-00000-of-00010']
    """
    return _run_and_judge("dataset_convert", judge_conversion, plan, launcher, observer, cancel)


def run_evaluation(
    plan: LaunchPlan, launcher: Launcher, observer: JobObserver | None = None, cancel: CancelToken | None = None
) -> EvaluationResult:
    """`detectnet_v2 evaluate` into its own results folder; EvaluationFailed unless TAO measured the model.

    The status.json of an earlier attempt is removed first: evaluate replaces it ("w"), and a
    reader that saw the old lines would take them for this attempt's.

    >>> run_evaluation(plan, launcher).average_precision  # doctest: +SKIP
    {'car': 86.1218, 'cyclist': 69.4445, 'pedestrian': 56.0027}
    """
    status = plan.results_host_dir / "status.json" if plan.results_host_dir else None
    try:
        if status is not None:
            status.unlink(missing_ok=True)  # a planted link is removed, never followed
    except OSError as exc:
        raise LaunchError(f"cannot clear the evaluation results folder: {exc.strerror}", where=str(status),
                          fix="remove what is there; evaluate needs a folder of its own") from None
    return _run_and_judge("evaluate", judge_evaluation, plan, _no_grace(launcher), observer, cancel)


def run_prune(plan: LaunchPlan, launcher: Launcher, observer: JobObserver | None = None,
              cancel: CancelToken | None = None) -> PruneResult:
    """`detectnet_v2 prune`; PruneFailed unless the pruned .hdf5 and its ratio are there.

    Outputs another run left are refused and this run's own from an earlier attempt removed before
    the container starts (`prepare_outputs`).

    >>> run_prune(plan, launcher).pruning_ratio  # doctest: +SKIP
    0.28675465541756007
    """
    prepare_outputs(plan)
    return _run_and_judge("prune", judge_prune, plan, _no_grace(launcher), observer, cancel)


def run_export(plan: LaunchPlan, launcher: Launcher, observer: JobObserver | None = None,
               cancel: CancelToken | None = None) -> ExportResult:
    """`detectnet_v2 export`; ExportFailed unless every file asked for is there.

    >>> run_export(plan, launcher).onnx.name  # doctest: +SKIP
    'resnet18_detector.onnx'
    """
    prepare_outputs(plan)
    return _run_and_judge("export", judge_export, plan, _no_grace(launcher), observer, cancel)


def run_gen_trt_engine(plan: LaunchPlan, launcher: Launcher, observer: JobObserver | None = None,
                       cancel: CancelToken | None = None) -> EngineResult:
    """TAO Deploy's `detectnet_v2 gen_trt_engine` (the plan names the TAO Deploy image); EngineBuildFailed
    unless the engine file is there.

    >>> run_gen_trt_engine(plan, launcher).data_type  # doctest: +SKIP
    'int8'
    """
    prepare_outputs(plan)
    return _run_and_judge("gen_trt_engine", judge_gen_trt_engine, plan, _no_grace(launcher), observer, cancel)


def _no_grace(launcher: Launcher) -> Launcher:
    # evaluate and the chain's steps save nothing on SIGUSR1 (no checkpoints): a stop goes straight to SIGTERM.
    return launcher.with_policy(dataclasses.replace(launcher.policy, graceful_seconds=0.0))


def _run_and_judge(
    subtask: str,
    judge: Callable[[JobOutcome, LaunchPlan], Result],
    plan: LaunchPlan,
    launcher: Launcher,
    observer: JobObserver | None,
    cancel: CancelToken | None,
) -> Result:
    if plan.command.subtask != subtask:
        raise ValueError(f"this needs a {subtask} command, got {plan.command.subtask}")
    return judge(launcher.run(plan, observer, cancel), plan)
