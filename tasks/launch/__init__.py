"""Launching `detectnet_v2` in the TAO container (or as a process inside it), observed,
cancellable, resumable, and judged by its results rather than its exit code."""

from tasks.launch.base import CancelToken, JobObserver, JobOutcome, Launcher, StopPolicy
from tasks.launch.command import Command, container_gpu_index, convert_command, evaluate_command, train_command
from tasks.launch.docker import DockerLauncher
from tasks.launch.encryption import key_reason
from tasks.launch.evaluation import EvaluationFailed, EvaluationResult
from tasks.launch.execute import run_conversion, run_evaluation, run_training
from tasks.launch.gpu_booking import BookingLauncher, GpuBroker
from tasks.launch.gpus import GpuDemand, GpuHost
from tasks.launch.judge import ConvertResult, TrainResult
from tasks.launch.mounts import Mount, MountPlan, TaoMounts, load_tao_mounts
from tasks.launch.plan import LaunchPlan, build_plan, device_requests, gpu_demand, invoking_user
from tasks.launch.process import ProcessLauncher
from tasks.launch.status import EpochEvent, StatusLog, ValidationEvent

__all__ = [
    "BookingLauncher",
    "CancelToken",
    "Command",
    "ConvertResult",
    "DockerLauncher",
    "EpochEvent",
    "EvaluationFailed",
    "EvaluationResult",
    "GpuBroker",
    "GpuDemand",
    "GpuHost",
    "JobObserver",
    "JobOutcome",
    "LaunchPlan",
    "Launcher",
    "Mount",
    "MountPlan",
    "ProcessLauncher",
    "StatusLog",
    "StopPolicy",
    "TaoMounts",
    "TrainResult",
    "ValidationEvent",
    "build_plan",
    "container_gpu_index",
    "convert_command",
    "device_requests",
    "evaluate_command",
    "gpu_demand",
    "invoking_user",
    "key_reason",
    "load_tao_mounts",
    "run_conversion",
    "run_evaluation",
    "run_training",
    "train_command",
]
