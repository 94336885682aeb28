"""Launching `detectnet_v2` in the TAO container (or as a process inside it), observed,
cancellable, resumable, and judged by its results rather than its exit code."""

from tasks.errors import EngineBuildFailed, ExportFailed, PruneFailed
from tasks.launch.base import CancelToken, JobObserver, JobOutcome, Launcher, StopPolicy
from tasks.launch.chain_commands import (
    BatchSizes,
    ChainCommand,
    Int8Calibration,
    PruneOptions,
    export_command,
    gen_trt_engine_command,
    prune_command,
)
from tasks.launch.command import Command, container_gpu_index, convert_command, evaluate_command, train_command
from tasks.launch.docker import DockerLauncher
from tasks.launch.encryption import key_reason
from tasks.launch.engine_build import EngineResult
from tasks.launch.evaluation import EvaluationFailed, EvaluationResult
from tasks.launch.execute import (
    run_conversion,
    run_evaluation,
    run_export,
    run_gen_trt_engine,
    run_prune,
    run_training,
)
from tasks.launch.gpu_booking import BookingLauncher, GpuBroker
from tasks.launch.gpus import GpuDemand, GpuHost
from tasks.launch.judge import ConvertResult, TrainResult
from tasks.launch.mounts import Mount, MountPlan, TaoMounts, load_tao_mounts
from tasks.launch.plan import LaunchPlan, build_plan, device_requests, gpu_demand, invoking_user
from tasks.launch.process import ProcessLauncher
from tasks.launch.prune_export import ExportResult, PruneResult
from tasks.launch.result_records import RecordError, artifacts_of, from_record, to_record
from tasks.launch.status import EpochEvent, StatusLog, ValidationEvent
from tasks.launch.step_artifacts import ArtifactFacts, artifact_facts

__all__ = [
    "ArtifactFacts",
    "BatchSizes",
    "BookingLauncher",
    "CancelToken",
    "ChainCommand",
    "Command",
    "ConvertResult",
    "DockerLauncher",
    "EngineBuildFailed",
    "EngineResult",
    "EpochEvent",
    "EvaluationFailed",
    "EvaluationResult",
    "ExportFailed",
    "ExportResult",
    "GpuBroker",
    "GpuDemand",
    "GpuHost",
    "Int8Calibration",
    "JobObserver",
    "JobOutcome",
    "LaunchPlan",
    "Launcher",
    "Mount",
    "MountPlan",
    "ProcessLauncher",
    "PruneFailed",
    "PruneOptions",
    "PruneResult",
    "RecordError",
    "StatusLog",
    "StopPolicy",
    "TaoMounts",
    "TrainResult",
    "ValidationEvent",
    "artifact_facts",
    "artifacts_of",
    "build_plan",
    "container_gpu_index",
    "convert_command",
    "device_requests",
    "evaluate_command",
    "export_command",
    "from_record",
    "gen_trt_engine_command",
    "gpu_demand",
    "invoking_user",
    "key_reason",
    "load_tao_mounts",
    "prune_command",
    "run_conversion",
    "run_evaluation",
    "run_export",
    "run_gen_trt_engine",
    "run_prune",
    "run_training",
    "to_record",
    "train_command",
]
