"""`PromotionPolicy`: when a newly trained model replaces the champion (the request's `promotion`).

Its own module so that the request and the registry (`tasks.registry.policy`, which applies it)
both depend on it without depending on each other.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator


class PromotionPolicy(BaseModel):
    """When a newly trained model replaces the champion. Both are evaluated on the same held-out
    data in the same run; AP and mAP are percentages, drops are in percentage points."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(
        default=True,
        description="Move the champion pointer to a new model that passes this policy. false: evaluate, "
        "publish and record the verdict, never change the champion.",
    )
    max_map_drop: float = Field(
        default=0.0, ge=0, le=100,
        description="Points of mAP the new model may lose against the champion (0: it must be at least as good).",
    )
    max_class_ap_drop: float = Field(
        default=5.0, ge=0, le=100,
        description="Points of AP any one class may lose against the champion, whatever the mAP does.",
    )
    min_map: float | None = Field(
        default=None, ge=0, le=100,
        description="Lowest mAP a model must reach to be promoted, also the first one (empty: no floor).",
    )
    min_class_ap: dict[str, float] = Field(
        default_factory=dict,
        description="Lowest AP per class a model must reach to be promoted, e.g. {pedestrian: 50}.",
    )

    @field_validator("min_class_ap")
    @classmethod
    def _percentages(cls, value: dict[str, float]) -> dict[str, float]:
        bad = {name: ap for name, ap in value.items() if not 0 <= ap <= 100}
        if bad:
            raise ValueError(f"AP floors are percentages between 0 and 100, got {bad}")
        return value
