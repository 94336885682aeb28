"""Promotion: after the new version is published, move the champion pointer to it, if the verdict
says so and the champion is still the one it was compared with.

The order is the guarantee: the card goes out with the model (one publication, marker last), and
only then is the pointer swapped, in one atomic step. A run killed anywhere before the swap leaves
the old champion in place; one killed after it leaves the new one, complete.
"""

from __future__ import annotations

from datetime import datetime, timezone

from tasks.job.promotion_policy import NOT_PROMOTED, PROMOTED, PromotionOutcome, Verdict
from tasks.job.request import TrainRequest
from tasks.registry.card import ModelCard
from tasks.registry.catalog import ChampionPointer, new_pointer, read_champion
from tasks.registry.pointer import PointerRead, swap_pointer
from tasks.storage import StorageAccess


def version_for_run(request: TrainRequest, scheduled: datetime | None, run_id: str) -> TrainRequest:
    """The request with the version folder this run publishes to: with `subfolder_per_run`, the
    model_subfolder plus the run's scheduled start (sorted by time, stable across retries) and the
    first 8 characters of its flow run id (so runs started in the same second never share a folder).

    >>> from tasks.job.request import TrainRequest
    >>> r = TrainRequest.model_construct(model_subfolder="nightly", subfolder_per_run=True)
    >>> start = datetime(2026, 12, 1, 2, 0, tzinfo=timezone.utc)
    >>> version_for_run(r, start, "3f2a9c41-5be0-4c8e-9d1e-0c6f1b7a2d10").model_subfolder
    'nightly-20261201T020000Z-3f2a9c41'
    """
    if not request.subfolder_per_run:
        return request
    stamp = (scheduled or datetime.now(timezone.utc)).astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    tag = "".join(ch for ch in run_id.lower() if ch.isalnum())[:8]
    return request.model_copy(update={"model_subfolder": f"{request.model_subfolder}-{stamp}-{tag}",
                                      "subfolder_per_run": False})


def promote(app: str, card: ModelCard, verdict: Verdict, compared: PointerRead, champion: ChampionPointer | None,
            access: StorageAccess | None = None, *, wait: float = 120.0) -> PromotionOutcome:
    """Swap the pointer to `card`'s version when the verdict allows it and the champion is still
    `compared` (what the run evaluated against).

    >>> import tempfile
    >>> from tasks.job.promotion_policy import Metrics, PromotionPolicy, judge_promotion
    >>> from tasks.registry.card import Evaluation, HeldOut
    >>> from tasks.registry.pointer import read_pointer
    >>> scores = Metrics(mean_average_precision=71.5, average_precision={"car": 71.5})
    >>> verdict = judge_promotion(PromotionPolicy(), scores, None)
    >>> card = ModelCard(version="r1", run_id="run-1", created_at="2026-12-06T00:00:00+00:00",
    ...     model="weights/model.hdf5", evaluation=Evaluation(**scores.model_dump(), held_out=HeldOut(
    ...     source="evaluation_data", fingerprint="e")), dataset_fingerprint="d", spec_sha256="s", tao_image="tao",
    ...     num_epochs=3, verdict=verdict)
    >>> app = tempfile.mkdtemp()
    >>> promote(app, card, verdict, read_pointer(app), None).state_name
    'Promoted'
    """
    before = champion.version if champion else None
    reasons = list(verdict.reasons)
    if verdict.promote:
        result = swap_pointer(app, new_pointer(card, champion).to_json(), compared.token, access, wait=wait)
        if result == "swapped":
            return PromotionOutcome(promoted=True, state_name=PROMOTED, version=card.version, champion_before=before,
                                    champion_after=card.version, verdict=verdict)
        now = read_champion(app, access) if result == "changed" else None
        if now is not None and (now.version, now.run_id) == (card.version, card.run_id):
            # A retry after a swap whose answer was lost: the pointer is already ours.
            return PromotionOutcome(promoted=True, state_name=PROMOTED, version=card.version, champion_before=before,
                                    champion_after=card.version, verdict=verdict)
        if result == "changed":
            reasons.append(f"the champion changed while this run was evaluating (now {now.version if now else 'none'}, "
                           "which it was not compared with); run again to compare against it")
        else:
            reasons.append(f"another run held the champion lock for {wait:g} s; run again")
    current = read_champion(app, access)
    return PromotionOutcome(promoted=False, state_name=NOT_PROMOTED, version=card.version, champion_before=before,
                            champion_after=current.version if current else None, reasons=reasons, verdict=verdict)
