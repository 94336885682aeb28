"""The promotion policy: tolerance on mAP, per-class drops, absolute floors, the first model, and
a reason for every class that blocks, so a refusal says what fell and by how much."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tasks.job.request import PromotionPolicy
from tasks.registry import Metrics, judge_promotion


def scores(**aps: float) -> Metrics:
    return Metrics(mean_average_precision=sum(aps.values()) / len(aps), average_precision=aps)


CHAMPION = scores(car=80.0, person=60.0)


def test_a_better_model_is_promoted_and_every_class_is_reported():
    verdict = judge_promotion(PromotionPolicy(), scores(car=82.0, person=61.0), CHAMPION)
    assert verdict.promote and verdict.reasons == []
    assert [(c.name, c.passed, c.change) for c in verdict.classes] == [("car", True, 2.0), ("person", True, 1.0)]
    assert verdict.map_change == pytest.approx(1.5)


def test_a_lower_map_is_refused_beyond_the_tolerance_only():
    worse = scores(car=79.0, person=60.0)  # mAP -0.5
    assert not judge_promotion(PromotionPolicy(), worse, CHAMPION).promote
    verdict = judge_promotion(PromotionPolicy(max_map_drop=1.0), worse, CHAMPION)
    assert verdict.promote, verdict.reasons
    refused = judge_promotion(PromotionPolicy(max_map_drop=0.25), worse, CHAMPION)
    assert refused.reasons == ["mAP 69.50 is 0.50 points below the champion (70.00); at most 0.25 allowed"]


def test_one_class_falling_blocks_a_model_whose_map_rose():
    verdict = judge_promotion(PromotionPolicy(max_class_ap_drop=2.0), scores(car=95.0, person=55.0), CHAMPION)
    assert verdict.map_change == pytest.approx(5.0)
    assert not verdict.promote
    assert verdict.reasons == ["person: AP 55.00 is 5.00 points below the champion (60.00); at most 2.00 allowed"]
    person = next(c for c in verdict.classes if c.name == "person")
    assert not person.passed and person.champion == 60.0 and person.challenger == 55.0


def test_the_first_model_is_promoted_when_it_meets_the_floors():
    assert judge_promotion(PromotionPolicy(), scores(car=10.0), None).promote
    policy = PromotionPolicy(min_map=50.0, min_class_ap={"person": 65.0})
    verdict = judge_promotion(policy, scores(car=80.0, person=60.0), None)
    assert not verdict.promote
    assert verdict.reasons == ["person: AP 60.00 is below the floor 65.00"]
    assert judge_promotion(policy, scores(car=80.0, person=70.0), None).promote
    low = judge_promotion(policy, scores(car=20.0, person=70.0), None)
    assert low.reasons == ["mAP 45.00 is below the floor 50.00"]


def test_a_class_the_new_model_no_longer_reports_counts_as_zero():
    verdict = judge_promotion(PromotionPolicy(), scores(car=90.0), CHAMPION)
    assert not verdict.promote
    assert any(r.startswith("person: AP 0.00 is 60.00 points below") for r in verdict.reasons)


def test_switched_off_or_unmeasurable_champion_is_never_promoted():
    off = judge_promotion(PromotionPolicy(enabled=False), scores(car=99.0, person=99.0), CHAMPION)
    assert not off.promote and off.reasons == ["promotion is switched off (promotion.enabled: false)"]
    unknown = judge_promotion(PromotionPolicy(), scores(car=99.0), None, champion_problem="model not found")
    assert not unknown.promote and "could not be evaluated" in unknown.reasons[0]


def test_the_policy_is_typed_and_described():
    with pytest.raises(ValidationError):
        PromotionPolicy(max_class_ap_drop=-1)
    with pytest.raises(ValidationError):
        PromotionPolicy(min_class_ap={"car": 120})
    with pytest.raises(ValidationError):
        PromotionPolicy(tolerance=1)  # unknown field
    schema = PromotionPolicy.model_json_schema()
    assert all(field.get("description") for field in schema["properties"].values())
