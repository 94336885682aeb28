"""Registries built the way the flow builds them (a results folder with its card, published with
`sync_up`, then `promote`), without training: the readers and the CLI are tested on real storage."""

from __future__ import annotations

from pathlib import Path

from tasks.job.request import PromotionPolicy, join_location
from tasks.registry import CARD_FILE, HeldOut, Metrics, ModelCard, judge_promotion, promote, read_champion, read_pointer
from tasks.registry.card import Evaluation
from tasks.storage import sync_up


def card_for(version: str, aps: dict[str, float], *, run_id: str, created_at: str, dataset: str = "d" * 64,
             champion: Metrics | None = None, policy: PromotionPolicy | None = None) -> ModelCard:
    mine = Metrics(mean_average_precision=sum(aps.values()) / len(aps), average_precision=aps)
    return ModelCard(
        version=version, run_id=run_id, created_at=created_at, model="weights/model.hdf5",
        evaluation=Evaluation(**mine.model_dump(), held_out=HeldOut(source="evaluation_data", fingerprint="e" * 64)),
        dataset_fingerprint=dataset, spec_sha256="5" * 64, tao_image="taoflow-standin-tao:test", num_epochs=3,
        verdict=judge_promotion(policy or PromotionPolicy(), mine, champion), compared_with=None,
        request={"model_app_name": "shapes", "model_subfolder": version},
    )


def publish_and_promote(app: str, card: ModelCard, work: Path, access=None):
    """Publish `card`'s version folder (model + card) and run the promotion against the champion of now."""
    folder = work / card.version
    (folder / "weights").mkdir(parents=True, exist_ok=True)
    (folder / "weights" / "model.hdf5").write_text(f"standin model of {card.version}\n")
    (folder / CARD_FILE).write_bytes(card.to_json())
    sync_up(folder, join_location(app, card.version), access=access)
    compared = read_pointer(app, access)
    return promote(app, card, card.verdict, compared, read_champion(app, access), access)
