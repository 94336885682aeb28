"""Run and judge in one call: what the flow, the CLI and the Prefect wrapper use."""

from __future__ import annotations

from tasks.launch.base import CancelToken, JobObserver, Launcher
from tasks.launch.judge import ConvertResult, TrainResult, judge_conversion, judge_training
from tasks.launch.plan import LaunchPlan


def run_training(
    plan: LaunchPlan, launcher: Launcher, observer: JobObserver | None = None, cancel: CancelToken | None = None
) -> TrainResult:
    """`detectnet_v2 train` to its end; TrainingFailed (resumable when checkpoints exist) otherwise."""
    if plan.command.subtask != "train":
        raise ValueError(f"run_training needs a train command, got {plan.command.subtask}")
    return judge_training(launcher.run(plan, observer, cancel), plan)


def run_conversion(
    plan: LaunchPlan, launcher: Launcher, observer: JobObserver | None = None, cancel: CancelToken | None = None
) -> ConvertResult:
    """`detectnet_v2 dataset_convert`; LaunchError unless the TFRecord shards were written."""
    if plan.command.subtask != "dataset_convert":
        raise ValueError(f"run_conversion needs a dataset_convert command, got {plan.command.subtask}")
    return judge_conversion(launcher.run(plan, observer, cancel), plan)
