"""One training job: the request (typed, described: the Prefect UI form), its job file and the
AzureML component's inputs, where its files live, pre-flight and the launch plans as plain
functions, their thin Prefect tasks (`tasks.job.job_tasks`), and the result."""

from tasks.job.config import LoadedConfig, load_config
from tasks.job.outcome import JobResult
from tasks.job.plans import plan_conversion, plan_evaluation, plan_training
from tasks.job.preflight import Preflight, PreparedSpec, input_locations, prepare_spec, run_preflight
from tasks.job.promotion_policy import PromotionPolicy
from tasks.job.request import DataBinding, TrainRequest
from tasks.job.step_cache import StepFolder, run_once, run_step, step_key
from tasks.job.workspace import StagedInput, Workspace, stage_input

__all__ = [
    "DataBinding",
    "JobResult",
    "LoadedConfig",
    "Preflight",
    "PreparedSpec",
    "PromotionPolicy",
    "StagedInput",
    "StepFolder",
    "TrainRequest",
    "Workspace",
    "input_locations",
    "load_config",
    "plan_conversion",
    "plan_evaluation",
    "plan_training",
    "prepare_spec",
    "run_once",
    "run_preflight",
    "run_step",
    "stage_input",
    "step_key",
]
