"""The chain after training, one call each (docs/chain.md): evaluate the trained model, prune it,
stop at the ratio gate or retrain the pruned one, evaluate it, choose the model that ships (the mAP
gate), export it to ONNX with the DeepStream config, build the TensorRT engine. Every GPU step runs
in its step folder (`JobRun.cached`): a run again after a failure goes on from the first step not done.
The result, `Shipped`, is what the champion is compared with and what the card describes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from prefect import get_run_logger

from flows.job_run import JobRun
from tasks.errors import ChainStopped
from tasks.job.chain_gates import choose_candidate, pruning_gate
from tasks.job.chain_plans import (
    plan_engine,
    plan_export,
    plan_prune,
    plan_retrain,
    pruned_evaluation_text,
    retrain_text,
)
from tasks.job.plans import plan_evaluation
from tasks.job.preflight import Preflight
from tasks.job.version_tree import CHAIN_FOLDER
from tasks.launch import EvaluationResult, TrainResult
from tasks.launch.engine_build import EngineResult
from tasks.launch.launch_tasks import chain_step, evaluate_detectnet_v2, train_detectnet_v2
from tasks.launch.prune_export import ExportResult, PruneResult
from tasks.launch.result_records import artifacts_of
from tasks.launch.step_artifacts import artifact_facts
from tasks.registry.chain_record import ChainRecord, StepArtifact, StepMetrics
from tasks.registry.registry_tasks import Challenger, Judged


@dataclass
class Shipped:
    """The model that ships and how the chain got there: each step's result, its folder, the gates' words."""

    challenger: Challenger
    decision: str
    folders: dict[str, Path] = field(default_factory=dict)
    unpruned_map: float | None = None
    retrained_map: float | None = None
    pruned: PruneResult | None = None
    retrained: TrainResult | None = None
    exported: ExportResult | None = None
    engine: EngineResult | None = None

    def published_path(self, trained: TrainResult) -> str:
        """The shipped model's path in the version folder (training's results at its top)."""
        if self.retrained is not None and self.challenger.pruned:
            inside = self.retrained.model_path.relative_to(self.retrained.results_dir).as_posix()
            return f"{CHAIN_FOLDER}/retrain/{inside}"
        return trained.model_path.relative_to(trained.results_dir).as_posix()

    def record(self, tree: Path, trained: TrainResult, judged: Judged) -> ChainRecord:
        """The card's account of the chain, its facts read from the version's own files."""
        shipped = "the retrained pruned model" if self.challenger.pruned else "the trained (unpruned) model"
        files = [("train", "model", trained.model_path.relative_to(trained.results_dir).as_posix(), None)]
        if self.pruned is not None:
            files.append(("prune", "model", f"{CHAIN_FOLDER}/prune/{self.pruned.model_path.name}",
                          self.pruned.param_count))
        if self.retrained is not None:
            inside = self.retrained.model_path.relative_to(self.retrained.results_dir).as_posix()
            files.append(("retrain", "model", f"{CHAIN_FOLDER}/retrain/{inside}", None))
        for step, result in (("export", self.exported), ("engine", self.engine)):
            if result is not None:
                files += [(step, kind, f"{CHAIN_FOLDER}/{step}/{path.name}", None)
                          for kind, path in artifacts_of(result).items()]
        artifacts = []
        for step, kind, path, params in files:
            facts = artifact_facts(tree / path, param_count=params)
            artifacts.append(StepArtifact(step=step, kind=kind, path=path, size_mb=round(facts.size_mb, 3),
                                          sha256=facts.sha256, param_count=facts.param_count))
        steps = [StepMetrics(step="train", mean_average_precision=self.unpruned_map, status="status.json")]
        if self.pruned is not None:
            steps.append(StepMetrics(step="prune", pruning_ratio=self.pruned.pruning_ratio,
                                     status=f"{CHAIN_FOLDER}/prune/status.json"))
        if self.retrained is not None:
            steps.append(StepMetrics(step="retrain", mean_average_precision=self.retrained_map,
                                     status=f"{CHAIN_FOLDER}/retrain/status.json"))
        steps += [StepMetrics(step=step, status=f"{CHAIN_FOLDER}/{step}/status.json")
                  for step, result in (("export", self.exported), ("engine", self.engine)) if result is not None]
        return ChainRecord(shipped="pruned" if self.challenger.pruned else "unpruned", decision=self.decision,
                           compared_on=f"{shipped}, `detectnet_v2 evaluate` of its .hdf5 on the held-out data "
                           f"(mAP {judged.challenger.mean_average_precision:.2f})", steps=steps, artifacts=artifacts)


def chain(job: JobRun, checked: Preflight, trained: TrainResult) -> Shipped:
    """The chain the request asks for after training; with none, the trained model ships as it is."""
    policy = job.request.chain
    shipped = Shipped(Challenger(trained.model_path), decision="the trained model ships (no pruning asked)")
    if policy.prune.enabled:
        shipped = prune_and_retrain(job, checked, trained)
    if policy.export.enabled:
        shipped.exported = export(job, checked, shipped)
        shipped.folders["export"] = shipped.exported.onnx.parent
    if policy.engine.enabled:
        shipped.engine = build_engine(job, checked, shipped)
        shipped.folders["engine"] = shipped.engine.engine.parent
    job.lap("chain")
    return shipped


def _evaluate(job: JobRun, checked: Preflight, model: Path, *, role: str, pruned: bool) -> EvaluationResult:
    text = checked.evaluation.text
    if pruned:
        text = pruned_evaluation_text(job.request, text, checked.prepared.source, model)
    plan = plan_evaluation(job.request, text, job.staged, job.run_dir, job.run_id, role=role, model=model, key=job.key)
    return evaluate_detectnet_v2(plan, job.launcher, role=role)


def prune_and_retrain(job: JobRun, checked: Preflight, trained: TrainResult) -> Shipped:
    """prune -> the ratio gate -> retrain -> evaluate both on the held-out data -> the mAP gate."""
    request, policy, logger = job.request, job.request.chain, get_run_logger()
    unpruned = _evaluate(job, checked, trained.model_path, role="unpruned", pruned=False)
    model_sha = artifact_facts(trained.model_path).sha256
    pruned: PruneResult = job.cached(
        "prune", PruneResult, lambda folder: plan_prune(request, trained.model_path, folder, job.run_id),
        lambda plan: chain_step(plan, job.launcher, "prune"), texts={}, inputs={"model": model_sha})
    gate = pruning_gate(policy, pruned.pruning_ratio)
    logger.info("prune: %s", gate.message)
    if not gate.passed:
        raise ChainStopped(f"the chain stopped after pruning: {gate.message}", where=str(pruned.model_path),
                           fix="adjust chain.prune.threshold or the ratio bounds and run again: training and pruning "
                               "are not repeated for the same inputs")
    pruned_sha = artifact_facts(pruned.model_path).sha256
    retrained: TrainResult = job.cached(
        "retrain", TrainResult,
        lambda folder: plan_retrain(request, checked.prepared, job.staged, pruned.model_path, folder, job.run_id,
                                    key=job.key),
        lambda plan: train_detectnet_v2(plan, job.launcher, artifact_prefix="detectnet-v2-retrain"),
        texts={"spec": retrain_text(request, checked.prepared.text, checked.prepared.source, pruned.model_path)},
        inputs={**job.fingerprints(request.training_bindings()), "pruned": pruned_sha})
    measured = _evaluate(job, checked, retrained.model_path, role="retrained", pruned=True)
    choice = choose_candidate(policy, unpruned.mean_average_precision, measured.mean_average_precision)
    logger.info("%s", choice.message)
    job.result.notes.append(choice.message)
    pruned_ships = choice.candidate == "pruned"
    challenger = (Challenger(retrained.model_path, pruned=True, evaluation=measured) if pruned_ships
                  else Challenger(trained.model_path, evaluation=unpruned))
    return Shipped(challenger, decision=f"{gate.message}; {choice.message}",
                   folders={"prune": pruned.model_path.parent, "retrain": retrained.results_dir},
                   unpruned_map=unpruned.mean_average_precision, retrained_map=measured.mean_average_precision,
                   pruned=pruned, retrained=retrained)


def _shipped_spec(job: JobRun, checked: Preflight, shipped: Shipped) -> str:
    """The spec the shipped model was trained with (the retrain spec for a pruned one)."""
    if shipped.challenger.pruned and shipped.pruned is not None:
        return retrain_text(job.request, checked.prepared.text, checked.prepared.source, shipped.pruned.model_path)
    return checked.prepared.text


def export(job: JobRun, checked: Preflight, shipped: Shipped) -> ExportResult:
    """`detectnet_v2 export` of the model that ships: ONNX, labels.txt, nvinfer_config.txt (and the INT8
    calibration cache when asked)."""
    model, text = shipped.challenger.model, _shipped_spec(job, checked, shipped)
    return job.cached(
        "export", ExportResult, lambda folder: plan_export(job.request, model, text, job.staged, folder, job.run_id),
        lambda plan: chain_step(plan, job.launcher, "export"), texts={"spec": text},
        inputs={"model": artifact_facts(model).sha256, **job.fingerprints(["calibration_images"])})


def build_engine(job: JobRun, checked: Preflight, shipped: Shipped) -> EngineResult:
    """TAO Deploy's `gen_trt_engine` of the exported ONNX in the request's TAO Deploy image."""
    assert shipped.exported is not None, "the request's policy makes export come first"
    onnx, text = shipped.exported.onnx, _shipped_spec(job, checked, shipped)
    inputs = {"onnx": artifact_facts(onnx).sha256, **job.fingerprints(["calibration_images"])}
    if shipped.exported.cal_cache is not None:
        inputs["calibration_cache"] = artifact_facts(shipped.exported.cal_cache).sha256
    return job.cached(
        "engine", EngineResult, lambda folder: plan_engine(job.request, onnx, text, job.staged, folder, job.run_id),
        lambda plan: chain_step(plan, job.launcher, "engine"), texts={"spec": text}, inputs=inputs)
