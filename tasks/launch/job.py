"""Run and judge in one call: what the flow, the CLI and the Prefect wrapper use."""

from __future__ import annotations

from typing import Callable, TypeVar

from tasks.launch.base import CancelToken, JobObserver, JobOutcome, Launcher
from tasks.launch.judge import ConvertResult, TrainResult, judge_conversion, judge_training
from tasks.launch.plan import LaunchPlan

Result = TypeVar("Result")


def run_training(
    plan: LaunchPlan, launcher: Launcher, observer: JobObserver | None = None, cancel: CancelToken | None = None
) -> TrainResult:
    """`detectnet_v2 train` to its end; TrainingFailed (resumable when checkpoints exist) otherwise."""
    return _run_and_judge("train", judge_training, plan, launcher, observer, cancel)


def run_conversion(
    plan: LaunchPlan, launcher: Launcher, observer: JobObserver | None = None, cancel: CancelToken | None = None
) -> ConvertResult:
    """`detectnet_v2 dataset_convert`; LaunchError unless the TFRecord shards were written."""
    return _run_and_judge("dataset_convert", judge_conversion, plan, launcher, observer, cancel)


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
