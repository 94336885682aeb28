"""Registries built the way the flow builds them (a results folder with its card, published with
`sync_up`, then `promote`), without training: the readers and the CLI are tested on real storage."""

from __future__ import annotations

import hashlib
from pathlib import Path

from tasks.job.request import PromotionPolicy, join_location
from tasks.registry import CARD_FILE, HeldOut, Metrics, ModelCard, judge_promotion, promote, read_champion, read_pointer
from tasks.registry.card import Evaluation
from tasks.registry.chain_record import ChainRecord, StepArtifact, StepMetrics
from tasks.storage import sync_up


def card_for(version: str, aps: dict[str, float], *, run_id: str, created_at: str, dataset: str = "d" * 64,
             champion: Metrics | None = None, policy: PromotionPolicy | None = None,
             chain: ChainRecord | None = None) -> ModelCard:
    mine = Metrics(mean_average_precision=sum(aps.values()) / len(aps), average_precision=aps)
    return ModelCard(
        version=version, run_id=run_id, created_at=created_at, model="weights/model.hdf5",
        evaluation=Evaluation(**mine.model_dump(), held_out=HeldOut(source="evaluation_data", fingerprint="e" * 64)),
        dataset_fingerprint=dataset, spec_sha256="5" * 64, tao_image="taoflow-standin-tao:test", num_epochs=3,
        verdict=judge_promotion(policy or PromotionPolicy(), mine, champion), compared_with=None,
        request={"model_app_name": "shapes", "model_subfolder": version}, chain=chain,
    )


#: The chain's files as the flow publishes them: step, kind, path in the version folder, KiB.
CHAIN_FILES = (("train", "model", "weights/model.hdf5", 512), ("prune", "model", "chain/prune/model.hdf5", 160),
               ("retrain", "model", "chain/retrain/weights/model.hdf5", 160),
               ("export", "onnx", "chain/export/model.onnx", 96), ("export", "labels", "chain/export/labels.txt", 1),
               ("engine", "engine", "chain/engine/model.engine", 64))


def chain_contents(version: str) -> dict[str, bytes]:
    """The bytes of each chain file of `version` (distinct per version, so are their SHA-256)."""
    contents = {}
    for _, _, path, kib in CHAIN_FILES:
        line = f"stand-in {path} of {version}\n".encode()
        contents[path] = (line * (kib * 1024 // len(line) + 1))[: kib * 1024]
    return contents


def chain_for(version: str, *, decision: str = "pruning cost 0.50 points of mAP, at most 1.00 allowed: the pruned "
              "model ships", maps: tuple[float, float] = (80.0, 79.5), pruning_ratio: float = 0.3,
              pruned_params: float = 3.5) -> ChainRecord:
    """The record the flow writes for prune -> retrain -> export -> engine, the pruned model shipping."""
    contents = chain_contents(version)
    artifacts = [StepArtifact(step=step, kind=kind, path=path, size_mb=round(len(contents[path]) / (1 << 20), 3),
                              sha256=hashlib.sha256(contents[path]).hexdigest(),
                              param_count=pruned_params if step == "prune" else None)
                 for step, kind, path, _ in CHAIN_FILES]
    steps = [StepMetrics(step="train", mean_average_precision=maps[0], status="status.json"),
             StepMetrics(step="prune", pruning_ratio=pruning_ratio, status="chain/prune/status.json"),
             StepMetrics(step="retrain", mean_average_precision=maps[1], status="chain/retrain/status.json"),
             StepMetrics(step="export", status="chain/export/status.json"),
             StepMetrics(step="engine", status="chain/engine/status.json")]
    return ChainRecord(shipped="pruned", decision=decision, steps=steps, artifacts=artifacts,
                       compared_on=f"the retrained pruned model, `detectnet_v2 evaluate` of its .hdf5 on the held-out "
                                   f"data (mAP {maps[1]:.2f})")


def publish_and_promote(app: str, card: ModelCard, work: Path, access=None):
    """Publish `card`'s version folder (model, the chain's files when it has a chain, card) and run the
    promotion against the champion of now."""
    folder = work / card.version
    (folder / "weights").mkdir(parents=True, exist_ok=True)
    (folder / "weights" / "model.hdf5").write_text(f"standin model of {card.version}\n")
    for path, data in (chain_contents(card.version) if card.chain else {}).items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_bytes(data)
    (folder / CARD_FILE).write_bytes(card.to_json())
    sync_up(folder, join_location(app, card.version), access=access)
    compared = read_pointer(app, access)
    return promote(app, card, card.verdict, compared, read_champion(app, access), access)
