"""When a newly trained model replaces the champion: the request's `promotion` policy, the verdict
that applies it, and the outcome a run reports.

Both models were evaluated in the same run on the same held-out data, so their numbers compare. The
policy bounds how much mAP and any one class's AP may drop, and sets optional absolute floors;
without a champion only the floors apply. Every class is checked and reported, so a refusal says
which class fell and by how much. Plain data and rules: the request, the registry (which keeps the
cards and the champion pointer) and the run's result all use them without depending on each other.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class PromotionPolicy(BaseModel):
    """When a newly trained model replaces the champion. Both are evaluated on the same held-out
    data in the same run; AP and mAP are percentages, drops are in percentage points."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(
        default=True,
        description="Move the champion pointer to a new model that passes this policy. false: evaluate, "
        "publish and record the verdict, never change the champion.",
        examples=[True, False],
    )
    max_map_drop: float = Field(
        default=0.0, ge=0, le=100,
        description="Points of mAP the new model may lose against the champion (0: it must be at least as good).",
        examples=[0.0, 0.5],
    )
    max_class_ap_drop: float = Field(
        default=5.0, ge=0, le=100,
        description="Points of AP any one class may lose against the champion, whatever the mAP does.",
        examples=[5.0, 2.0],
    )
    min_map: float | None = Field(
        default=None, ge=0, le=100,
        description="Lowest mAP a model must reach to be promoted, also the first one (empty: no floor).",
        examples=[60.0],
    )
    min_class_ap: dict[str, float] = Field(
        default_factory=dict,
        description="Lowest AP per class a model must reach to be promoted, e.g. {pedestrian: 50}.",
        examples=[{"pedestrian": 50.0, "car": 70.0}],
    )

    @field_validator("min_class_ap")
    @classmethod
    def _percentages(cls, value: dict[str, float]) -> dict[str, float]:
        bad = {name: ap for name, ap in value.items() if not 0 <= ap <= 100}
        if bad:
            raise ValueError(f"AP floors are percentages between 0 and 100, got {bad}")
        return value


class Metrics(BaseModel):
    """A model's scores on the held-out data, in percent: finite numbers (an `Infinity` read from a
    card once became the champion's mAP, and `champion.json` was no longer JSON)."""

    model_config = ConfigDict(allow_inf_nan=False)

    mean_average_precision: float = Field(description="mAP: the plain mean of the classes' AP (%)")
    average_precision: dict[str, float] = Field(default_factory=dict, description="AP per class (%)")


class ClassCheck(BaseModel):
    """One class, challenger against champion and floor."""

    name: str
    challenger: float = Field(description="The new model's AP (%); 0 when it reported none for this class")
    champion: float | None = Field(default=None, description="The champion's AP (%) on the same data")
    change: float | None = Field(default=None, description="challenger - champion, in points")
    passed: bool
    reason: str | None = Field(default=None, description="Why this class blocks the promotion")


class Verdict(BaseModel):
    """Promote or not, with every reason, per class."""

    promote: bool
    reasons: list[str] = Field(default_factory=list, description="Why not (empty when promoted)")
    classes: list[ClassCheck] = Field(default_factory=list)
    challenger: Metrics
    champion: Metrics | None = None
    map_change: float | None = Field(default=None, description="challenger mAP - champion mAP, in points")

    def summary(self) -> str:
        """One line for a state message or a table cell."""
        score = f"mAP {self.challenger.mean_average_precision:.2f}"
        if self.champion is not None:
            score += f" vs champion {self.champion.mean_average_precision:.2f}"
        return f"{score}; " + ("; ".join(self.reasons) if self.reasons else "passes the policy")


def judge_promotion(
    policy: PromotionPolicy,
    challenger: Metrics,
    champion: Metrics | None,
    *,
    champion_problem: str | None = None,
) -> Verdict:
    """Apply the policy. `champion_problem`: a champion exists but could not be evaluated.

    >>> from tasks.job.promotion_policy import PromotionPolicy
    >>> v = judge_promotion(PromotionPolicy(max_class_ap_drop=2), Metrics(mean_average_precision=70,
    ...     average_precision={"car": 80, "person": 60}), Metrics(mean_average_precision=69,
    ...     average_precision={"car": 75, "person": 63}))
    >>> v.promote, v.reasons
    (False, ['person: AP 60.00 is 3.00 points below the champion (63.00); at most 2.00 allowed'])
    """
    reasons: list[str] = []
    if not policy.enabled:
        reasons.append("promotion is switched off (promotion.enabled: false)")
    if champion_problem:
        reasons.append(f"the champion could not be evaluated on the held-out data, so nothing compares: {champion_problem}")
    if policy.min_map is not None and challenger.mean_average_precision < policy.min_map:
        reasons.append(f"mAP {challenger.mean_average_precision:.2f} is below the floor {policy.min_map:.2f}")
    map_change = None
    if champion is not None:
        map_change = challenger.mean_average_precision - champion.mean_average_precision
        if -map_change > policy.max_map_drop + 1e-9:
            reasons.append(f"mAP {challenger.mean_average_precision:.2f} is {-map_change:.2f} points below the "
                           f"champion ({champion.mean_average_precision:.2f}); at most {policy.max_map_drop:.2f} allowed")
    names = sorted(set(challenger.average_precision) | set(champion.average_precision if champion else {})
                   | set(policy.min_class_ap))
    classes = [_check(policy, name, challenger, champion) for name in names]
    reasons += [f"{c.name}: {c.reason}" for c in classes if c.reason]
    return Verdict(promote=not reasons, reasons=reasons, classes=classes, challenger=challenger, champion=champion,
                   map_change=map_change)


def _check(policy: PromotionPolicy, name: str, challenger: Metrics, champion: Metrics | None) -> ClassCheck:
    # A class the new model does not report (the spec dropped it) scores 0, as TAO counts a NaN AP.
    mine = challenger.average_precision.get(name, 0.0)
    theirs = champion.average_precision.get(name) if champion is not None else None
    change = None if theirs is None else mine - theirs
    problems = []
    if change is not None and -change > policy.max_class_ap_drop + 1e-9:
        problems.append(f"AP {mine:.2f} is {-change:.2f} points below the champion ({theirs:.2f}); "
                        f"at most {policy.max_class_ap_drop:.2f} allowed")
    floor = policy.min_class_ap.get(name)
    if floor is not None and mine < floor:
        problems.append(f"AP {mine:.2f} is below the floor {floor:.2f}")
    return ClassCheck(name=name, challenger=mine, champion=theirs, change=change, passed=not problems,
                      reason="; ".join(problems) or None)


PROMOTED = "Promoted"
NOT_PROMOTED = "Not promoted"


class PromotionOutcome(BaseModel):
    """What happened to the champion in this run; `state_name` is the flow run's state in the UI."""

    promoted: bool
    state_name: Literal["Promoted", "Not promoted"]
    version: str = Field(description="The new model's version (its folder under OUTPUT/MODEL_APP_NAME)")
    champion_before: str | None = Field(default=None, description="The champion it was compared with")
    champion_after: str | None = Field(default=None, description="The champion when the run ended")
    reasons: list[str] = Field(default_factory=list, description="Why it was not promoted, per class where it applies")
    verdict: Verdict

    @property
    def message(self) -> str:
        """The state message: short enough for the UI list, complete enough for a notification."""
        if self.promoted:
            was = f" (was {self.champion_before})" if self.champion_before else " (the first champion)"
            return f"{self.version} is the champion{was}: {self.verdict.summary()}"
        return f"{self.version} not promoted, the champion stays {self.champion_after or 'unset'}: " + "; ".join(self.reasons)


def promotion_markdown(outcome: PromotionOutcome) -> str:
    """The verdict for people: champion and new model side by side, per class, and why.

            >>> v = judge_promotion(PromotionPolicy(), Metrics(mean_average_precision=70, average_precision={"car": 70}), None)
    >>> print(promotion_markdown(PromotionOutcome(promoted=True, state_name="Promoted", version="r1",
    ...     champion_after="r1", verdict=v)).splitlines()[0])
    # Promoted: r1
    """
    v = outcome.verdict
    lines = [f"# {outcome.state_name}: {outcome.version}", "", outcome.message, "",
             "| | new model | champion | change | verdict |", "|---|---|---|---|---|"]

    def cell(value: float | None, signed: bool = False) -> str:
        return "-" if value is None else (f"{value:+.2f}" if signed else f"{value:.2f}")

    champion_map = v.champion.mean_average_precision if v.champion else None
    lines.append(f"| **mAP** | {cell(v.challenger.mean_average_precision)} | {cell(champion_map)} | "
                 f"{cell(v.map_change, True)} | |")
    for c in v.classes:
        lines.append(f"| {c.name} | {cell(c.challenger)} | {cell(c.champion)} | {cell(c.change, True)} | "
                     f"{'ok' if c.passed else c.reason} |")
    if outcome.reasons:
        lines += ["", "## Why not promoted", "", *(f"- {r}" for r in outcome.reasons)]
    lines += ["", f"Champion before: `{outcome.champion_before or 'none'}`, after: `{outcome.champion_after or 'none'}`"]
    return "\n".join(lines) + "\n"
