"""Prefect tasks for the registry: the champion-folder guard, evaluating the new model and the
champion on the same held-out data, and promotion, with a markdown artifact of the verdict.

Thin on purpose: the decisions are in `tasks.registry` (policy, card, pointer, promotion); here
they are run as tasks with retries for transient storage faults, logged and shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from tasks.errors import TaoflowError
from tasks.job.chain_plans import pruned_evaluation_text
from tasks.job.plans import plan_evaluation
from tasks.job.promotion_policy import Metrics, PromotionOutcome, Verdict, judge_promotion, promotion_markdown
from tasks.job.request import TrainRequest
from tasks.job.workspace import StagedInput, Workspace
from tasks.launch import EvaluationResult, Launcher
from tasks.launch.launch_tasks import evaluate_detectnet_v2
from tasks.registry.card import Evaluation, HeldOut, ModelCard
from tasks.registry.catalog import ChampionPointer, cards_of_runs, parse_pointer
from tasks.registry.champion_model import stage_champion_model
from tasks.registry.claims import Claim, check_claim, claim_version
from tasks.registry.pointer import PointerRead, read_pointer
from tasks.registry.promotion import promote
from tasks.report import Comparison
from tasks.storage import StorageAccess
from tasks.storage.sync_tasks import RETRY_PUBLISH, RETRY_TRANSIENT


@task(name="claim-version-folder", **RETRY_TRANSIENT)
def claim_version_task(app: str, version: str, run_id: str, access: StorageAccess | None = None) -> Claim:
    """Make the version folder this run's before any container starts (or fail: another run's)."""
    return claim_version(app, version, run_id, access)


@task(name="check-version-claim", **RETRY_PUBLISH)
def check_claim_task(app: str, version: str, run_id: str, access: StorageAccess | None = None) -> Claim:
    """Right before publishing: the folder is still this run's, and holds no other run's model."""
    return check_claim(app, version, run_id, access)


@task(name="stage-champion-model", **RETRY_TRANSIENT)
def stage_champion_task(app: str, champion: ChampionPointer, workspace: Workspace,
                        access: StorageAccess | None = None) -> Path:
    """The champion's model copied into the workspace and checked (tasks.registry.champion_model)."""
    return stage_champion_model(app, champion, workspace, access)


@task(name="read-champion", **RETRY_TRANSIENT)
def read_champion_task(app: str, access: StorageAccess | None = None) -> tuple[PointerRead, ChampionPointer | None]:
    """The champion pointer as it is now, with the token the promotion must still find."""
    read = read_pointer(app, access)
    return read, parse_pointer(read, app)


@task(name="read-sweep-cards", **RETRY_TRANSIENT)
def cards_of_runs_task(app: str, run_ids: list[str], access: StorageAccess | None = None) -> dict[str, ModelCard]:
    """The model cards the given training runs published in `app`, by run id."""
    return cards_of_runs(app, run_ids, access)


@dataclass(frozen=True)
class Judged:
    """Both models measured on the same held-out data, and the verdict."""

    compared: PointerRead
    champion: ChampionPointer | None
    challenger: EvaluationResult
    held_out: HeldOut
    verdict: Verdict

    def evaluation(self) -> Evaluation:
        """The challenger's evaluation, as its model card records it."""
        return Evaluation(**metrics(self.challenger).model_dump(), held_out=self.held_out,
                          validation_cost=self.challenger.validation_cost)


def metrics(result: EvaluationResult) -> Metrics:
    return Metrics(mean_average_precision=result.mean_average_precision, average_precision=result.average_precision)


@dataclass(frozen=True)
class Contest:
    """What comparing the new model with the champion needs, on the same held-out data: one object."""

    app: str
    request: TrainRequest
    #: The spec `evaluate` reads (the held-out data rebased), and the file it came from (for errors).
    eval_spec: str
    eval_source: str
    held_out: HeldOut
    staged: Mapping[str, StagedInput]
    workspace: Workspace
    run_dir: Path
    run_id: str
    launcher: Launcher
    access: StorageAccess | None
    key: str | None


@dataclass(frozen=True)
class Challenger:
    """The model that ships: the trained one, or the retrained pruned one (evaluated with load_graph)."""

    model: Path
    pruned: bool = False
    #: Its held-out evaluation when the chain measured it already in this run (not measured twice).
    evaluation: EvaluationResult | None = None


def _spec_for(contest: Contest, model: Path, pruned: bool) -> str:
    if not pruned:
        return contest.eval_spec
    return pruned_evaluation_text(contest.request, contest.eval_spec, contest.eval_source, model)


def evaluate_and_judge(contest: Contest, challenger: Challenger) -> Judged:
    """`evaluate` the model that ships and the current champion on the very same data, and judge.

    A champion that cannot be evaluated (its files gone, its version unpublished, without a card or
    reached through a link, a key missing, TAO refusing it) is no reason to fail the run: the new
    model is still published, and not promoted, with that reason.
    """
    c = contest
    compared, champion = read_champion_task(c.app, c.access)
    rival = champion if champion is not None and champion.version != c.request.model_subfolder else None
    # The champion's model is fetched first, so the two evaluations run back to back.
    champion_plan, problem = None, None
    if rival is not None:
        try:
            model = stage_champion_task(c.app, rival, c.workspace, c.access)
            champion_plan = plan_evaluation(c.request, _spec_for(c, model, rival.shipped == "pruned"), c.staged,
                                            c.run_dir, c.run_id, role="champion", model=model, key=c.key)
        except TaoflowError as exc:
            problem = _unevaluable(rival, exc)
    measured = challenger.evaluation or evaluate_detectnet_v2(
        plan_evaluation(c.request, _spec_for(c, challenger.model, challenger.pruned), c.staged, c.run_dir, c.run_id,
                        role="challenger", model=challenger.model, key=c.key), c.launcher, role="challenger")
    champion_metrics = None
    if champion_plan is not None:
        try:
            champion_metrics = metrics(evaluate_detectnet_v2(champion_plan, c.launcher, role="champion"))
        except TaoflowError as exc:
            problem = _unevaluable(rival, exc)
    verdict = judge_promotion(c.request.promotion, metrics(measured), champion_metrics, champion_problem=problem)
    return Judged(compared, champion, measured, c.held_out, verdict)


def comparison(judged: Judged) -> Comparison:
    """Champion vs challenger as the report draws it, with the verdict the promotion will act on."""
    verdict = judged.verdict
    return Comparison(
        challenger=verdict.challenger.average_precision, challenger_map=verdict.challenger.mean_average_precision,
        champion=verdict.champion.average_precision if verdict.champion else None,
        champion_map=verdict.champion.mean_average_precision if verdict.champion else None,
        outcome="Promoted" if verdict.promote else "Not promoted", reasons=list(verdict.reasons),
    )


def _unevaluable(champion: ChampionPointer, exc: TaoflowError) -> str:
    get_run_logger().warning("the champion %s cannot be evaluated: %s", champion.version, exc.render())
    return exc.what.splitlines()[0]


@task(name="promote", **RETRY_TRANSIENT)
def promote_task(app: str, card: ModelCard, judged: Judged, access: StorageAccess | None = None) -> PromotionOutcome:
    """Move the champion pointer (or not) and say why, in the log and a `promotion` artifact."""
    outcome = promote(app, card, judged.verdict, judged.compared, judged.champion, access)
    get_run_logger().info("%s: %s", outcome.state_name, outcome.message)
    create_markdown_artifact(promotion_markdown(outcome), key="promotion", description=outcome.message[:500])
    return outcome

