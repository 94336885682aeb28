"""The gates of the chain, as pure functions of the request's `chain` policy and the numbers the
steps reported: is the pruning ratio within its bounds, and which model is the candidate after the
retrain — the pruned one, or the unpruned one when pruning cost more mAP than the policy allows.

Both models are evaluated by `detectnet_v2 evaluate` on the same data in the same run, so their mAPs
compare (percent); a drop is in percentage points. The ratio is TAO's `pruning_ratio`: pruned /
original parameters (`cv/common/magnet_prune.py`).
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, Field

from tasks.job.chain_policy import ChainPolicy

#: Float noise in a comparison of percentages.
_EPSILON = 1e-9


class GateVerdict(BaseModel):
    """Pass or stop, and why, in words for the run's state message and the model card."""

    passed: bool
    message: str


class CandidateChoice(BaseModel):
    """The model the chain carries on with after the retrain, and why."""

    candidate: Literal["pruned", "unpruned"]
    unpruned_map: float = Field(description="mAP of the unpruned model (%)")
    pruned_map: float = Field(description="mAP of the retrained pruned model (%)")
    map_drop: float = Field(description="unpruned - pruned mAP, in points (negative: pruning gained)")
    message: str


def pruning_gate(policy: ChainPolicy, ratio: float) -> GateVerdict:
    """Whether the pruned model is worth a retrain: its ratio within [min, max].

    >>> pruning_gate(ChainPolicy(), 0.28675465541756007).message
    'pruning kept 28.7% of the parameters (ratio 0.287, within 0.100 to 0.950)'
    >>> pruning_gate(ChainPolicy(), 0.99).passed
    False
    """
    low, high = policy.min_pruning_ratio, policy.max_pruning_ratio
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not math.isfinite(ratio) or ratio <= 0:
        return GateVerdict(passed=False, message=f"TAO reported the pruning ratio {ratio!r}, which is no ratio: "
                           "read the prune step's log")
    kept = f"pruning kept {ratio:.1%} of the parameters (ratio {ratio:.3f}"
    if ratio < low - _EPSILON:
        return GateVerdict(passed=False, message=f"{kept}, below min_pruning_ratio {low:.3f}): the model would lose "
                           "too much for a retrain to recover; lower chain.prune.threshold (-pth)")
    if ratio > high + _EPSILON:
        return GateVerdict(passed=False, message=f"{kept}, above max_pruning_ratio {high:.3f}): too little was pruned "
                           "to be worth a retrain; raise chain.prune.threshold (-pth)")
    return GateVerdict(passed=True, message=f"{kept}, within {low:.3f} to {high:.3f})")


def choose_candidate(policy: ChainPolicy, unpruned_map: float, pruned_map: float) -> CandidateChoice:
    """The pruned model when its mAP dropped at most `max_map_drop_after_prune` points, else the unpruned one.

    >>> choose_candidate(ChainPolicy(max_map_drop_after_prune=1.0), 70.523, 67.3).message
    'pruning cost 3.22 points of mAP (70.52 -> 67.30), more than the 1.00 allowed: the unpruned model is the candidate'
    >>> choose_candidate(ChainPolicy(), 70.523, 70.9).candidate
    'pruned'
    """
    drop = unpruned_map - pruned_map
    allowed = policy.max_map_drop_after_prune
    scores = f"({unpruned_map:.2f} -> {pruned_map:.2f})"
    if drop > allowed + _EPSILON:
        return CandidateChoice(candidate="unpruned", unpruned_map=unpruned_map, pruned_map=pruned_map, map_drop=drop,
                               message=f"pruning cost {drop:.2f} points of mAP {scores}, more than the "
                               f"{allowed:.2f} allowed: the unpruned model is the candidate")
    cost = f"pruning cost {drop:.2f} points of mAP" if drop > 0 else f"pruning gained {-drop:.2f} points of mAP"
    return CandidateChoice(candidate="pruned", unpruned_map=unpruned_map, pruned_map=pruned_map, map_drop=drop,
                           message=f"{cost} {scores}, within the {allowed:.2f} allowed: the pruned model is the "
                           "candidate")
