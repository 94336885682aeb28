"""Run and judge in one call: what the flow, the CLI and the Prefect wrapper use.

The examples run on the tests' stand-ins for TAO (`tests/standin`: scripts that leave what NVIDIA's
code leaves, not NVIDIA's code) with the `ProcessLauncher`; in production the plans come from
`tasks.job.plans` and the launcher is a `DockerLauncher` on a GPU host.
"""

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
    r"""`detectnet_v2 train` to its end; TrainingFailed (resumable when checkpoints exist) otherwise.

    >>> import tempfile; from pathlib import Path
    >>> from tasks.launch import ProcessLauncher, build_plan, train_command
    >>> from tasks.launch.slots import SPEC_FILE_NAME, Slot
    >>> from tests.standin.image import standin_executable
    >>> root = Path(tempfile.mkdtemp()); (root / "specs").mkdir()
    >>> _ = (root / "specs" / SPEC_FILE_NAME).write_text("training_config {\n  num_epochs: 2\n}\n")
    >>> plan = build_plan(train_command(model_name="detector", num_epochs=2), run_id="r1", image="unused",
    ...                   slots={Slot.SPEC: root / "specs", Slot.RESULTS: root / "results"}, docker_gpus="none")
    >>> result = run_training(plan, ProcessLauncher(executable=str(standin_executable())))
    >>> result.model_path.relative_to(root), [epoch.epoch for epoch in result.epochs]
    (PosixPath('results/weights/detector.hdf5'), [0, 1])
    """
    return _run_and_judge("train", judge_training, plan, launcher, observer, cancel)


def run_conversion(
    plan: LaunchPlan, launcher: Launcher, observer: JobObserver | None = None, cancel: CancelToken | None = None
) -> ConvertResult:
    r"""`detectnet_v2 dataset_convert`; LaunchError unless the TFRecord shards were written.

    >>> import tempfile; from pathlib import Path; from PIL import Image
    >>> from tasks.launch import ProcessLauncher, build_plan, convert_command
    >>> from tasks.launch.slots import Slot
    >>> from tests.standin.image import standin_executable
    >>> root = Path(tempfile.mkdtemp()); data = root / "data"
    >>> for sub in ("image_2", "label_2"): (data / sub).mkdir(parents=True)
    >>> for stem in ("000001", "000002"):
    ...     Image.new("RGB", (1248, 384)).save(data / "image_2" / f"{stem}.png")
    ...     _ = (data / "label_2" / f"{stem}.txt").write_text("Car 0 0 0 1 2 30 40 0 0 0 0 0 0 0\n")
    >>> (root / "specs").mkdir(); _ = (root / "specs" / "convert.txt").write_text(  # a process reads host paths
    ...     f'kitti_config {{\n  root_directory_path: "{data}"\n  image_dir_name: "image_2"\n'
    ...     '  label_dir_name: "label_2"\n  image_extension: ".png"\n  partition_mode: "random"\n'
    ...     '  num_partitions: 2\n  val_split: 50\n  num_shards: 1\n}\n')
    >>> command = convert_command(spec="/workspace/taoflow/specs/convert.txt",
    ...     output_prefix="/workspace/taoflow/results/tfrecords/kitti", results_dir="/workspace/taoflow/results")
    >>> plan = build_plan(command, run_id="r1", image="unused", docker_gpus="none", slots={
    ...     Slot.SPEC: root / "specs", Slot.TRAINING_DATA: data, Slot.RESULTS: root / "results"})
    >>> shards = run_conversion(plan, ProcessLauncher(executable=str(standin_executable()))).output_files
    >>> [shard.name for shard in shards]
    ['kitti-fold-000-of-002-shard-00000-of-00001', 'kitti-fold-001-of-002-shard-00000-of-00001']
    """
    return _run_and_judge("dataset_convert", judge_conversion, plan, launcher, observer, cancel)


def run_evaluation(
    plan: LaunchPlan, launcher: Launcher, observer: JobObserver | None = None, cancel: CancelToken | None = None
) -> EvaluationResult:
    r"""`detectnet_v2 evaluate` into its own results folder; EvaluationFailed unless TAO measured the model.

    The status.json of an earlier attempt is removed first: evaluate replaces it ("w"), and a
    reader that saw the old lines would take them for this attempt's.

    >>> import tempfile; from pathlib import Path
    >>> from tasks.launch import ProcessLauncher, build_plan, evaluate_command
    >>> from tasks.launch.slots import SPEC_FILE_NAME, Slot, container_path, container_spec_file
    >>> from tests.standin.image import standin_executable
    >>> root = Path(tempfile.mkdtemp()); (root / "specs").mkdir(); (root / "model").mkdir()
    >>> _ = (root / "specs" / SPEC_FILE_NAME).write_text(
    ...     'dataset_config {\n  target_class_mapping {\n    key: "car"\n    value: "car"\n  }\n}\n')
    >>> _ = (root / "model" / "detector.hdf5").write_text("weights")
    >>> command = evaluate_command(spec=container_spec_file(), results_dir=container_path(Slot.RESULTS),
    ...                            model=f"{container_path(Slot.EVALUATED_MODEL)}/detector.hdf5")
    >>> plan = build_plan(command, run_id="r1", image="unused", docker_gpus="none", slots={
    ...     Slot.SPEC: root / "specs", Slot.EVALUATED_MODEL: root / "model", Slot.RESULTS: root / "evaluate"})
    >>> run_evaluation(plan, ProcessLauncher(executable=str(standin_executable()))).average_precision
    {'car': 75.0}
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
    r"""`detectnet_v2 prune`; PruneFailed unless the pruned .hdf5 and its ratio are there.

    Outputs another run left are refused and this run's own from an earlier attempt removed before
    the container starts (`prepare_outputs`).

    >>> import tempfile; from pathlib import Path
    >>> from tasks.launch import ProcessLauncher, build_plan, prune_command
    >>> from tasks.launch.slots import Slot, container_path
    >>> from tests.standin.image import standin_executable
    >>> root = Path(tempfile.mkdtemp()); (root / "model").mkdir()
    >>> _ = (root / "model" / "detector.hdf5").write_text("weights")
    >>> results, model = container_path(Slot.RESULTS), container_path(Slot.BASE_MODEL)
    >>> command = prune_command(model=f"{model}/detector.hdf5", output=f"{results}/pruned.hdf5", results_dir=results)
    >>> plan = build_plan(command, run_id="r1", image="unused", docker_gpus="none",
    ...                   slots={Slot.BASE_MODEL: root / "model", Slot.RESULTS: root / "prune"})
    >>> pruned = run_prune(plan, ProcessLauncher(executable=str(standin_executable())))
    >>> pruned.model_path.relative_to(root), 0 < pruned.pruning_ratio <= 1
    (PosixPath('prune/pruned.hdf5'), True)
    """
    prepare_outputs(plan)
    return _run_and_judge("prune", judge_prune, plan, _no_grace(launcher), observer, cancel)


def run_export(plan: LaunchPlan, launcher: Launcher, observer: JobObserver | None = None,
               cancel: CancelToken | None = None) -> ExportResult:
    r"""`detectnet_v2 export`; ExportFailed unless every file asked for is there.

    >>> import tempfile; from pathlib import Path
    >>> from tasks.launch import ProcessLauncher, build_plan, export_command
    >>> from tasks.launch.slots import SPEC_FILE_NAME, Slot, container_path, container_spec_file
    >>> from tests.standin.image import standin_executable
    >>> root = Path(tempfile.mkdtemp()); (root / "specs").mkdir(); (root / "model").mkdir()
    >>> _ = (root / "specs" / SPEC_FILE_NAME).write_text(  # the class names of labels.txt
    ...     'cost_function_config {\n  target_classes {\n    name: "car"\n  }\n}\n')
    >>> _ = (root / "model" / "detector.hdf5").write_text("weights")
    >>> results, model = container_path(Slot.RESULTS), container_path(Slot.BASE_MODEL)
    >>> command = export_command(model=f"{model}/detector.hdf5", output=f"{results}/detector.onnx",
    ...                          spec=container_spec_file(), results_dir=results)
    >>> plan = build_plan(command, run_id="r1", image="unused", docker_gpus="none", slots={
    ...     Slot.SPEC: root / "specs", Slot.BASE_MODEL: root / "model", Slot.RESULTS: root / "export"})
    >>> exported = run_export(plan, ProcessLauncher(executable=str(standin_executable())))
    >>> exported.onnx.name, exported.labels.read_text().split()
    ('detector.onnx', ['car'])
    """
    prepare_outputs(plan)
    return _run_and_judge("export", judge_export, plan, _no_grace(launcher), observer, cancel)


def run_gen_trt_engine(plan: LaunchPlan, launcher: Launcher, observer: JobObserver | None = None,
                       cancel: CancelToken | None = None) -> EngineResult:
    r"""TAO Deploy's `detectnet_v2 gen_trt_engine` (the plan names the TAO Deploy image); EngineBuildFailed
    unless the engine file is there.

    >>> import tempfile; from pathlib import Path
    >>> from tasks.launch import ProcessLauncher, build_plan, gen_trt_engine_command
    >>> from tasks.launch.slots import SPEC_FILE_NAME, Slot, container_path, container_spec_file
    >>> from tests.standin.image import standin_deploy_executable
    >>> root = Path(tempfile.mkdtemp()); (root / "specs").mkdir(); (root / "model").mkdir()
    >>> _ = (root / "specs" / SPEC_FILE_NAME).write_text("training_config {\n  num_epochs: 2\n}\n")
    >>> _ = (root / "model" / "detector.onnx").write_text("onnx")
    >>> results, model = container_path(Slot.RESULTS), container_path(Slot.BASE_MODEL)
    >>> command = gen_trt_engine_command(model=f"{model}/detector.onnx", spec=container_spec_file(),
    ...     results_dir=results, engine_file=f"{results}/detector.engine", data_type="fp16")
    >>> plan = build_plan(command, run_id="r1", image="unused", docker_gpus="none", slots={
    ...     Slot.SPEC: root / "specs", Slot.BASE_MODEL: root / "model", Slot.RESULTS: root / "engine"})
    >>> engine = run_gen_trt_engine(plan, ProcessLauncher(executable=str(standin_deploy_executable())))
    >>> engine.engine.relative_to(root), engine.data_type
    (PosixPath('engine/detector.engine'), 'fp16')
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
