"""A sweep's table: one row per variant, scored on the number promotion decides on.

A training run's JobResult carries training's last validation mAP; promotion decides on the
held-out evaluation of `detectnet_v2 evaluate`, written into the version's model card. A user picks
the winner from this table, so its `map` column is the card's evaluation mAP and training's
validation mAP stands beside it (`validation_map`). The card is the record: the run's persisted
result only fills in what the card lacks, and a run whose card and result cannot be read says so
in its row, with its state and a link to it, instead of failing the sweep.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tasks.job.outcome import JobResult
from tasks.registry.card import ModelCard

#: The columns every row has after the variant's own settings, in the table's order.
COLUMNS = ("flow_run", "state", "status", "map", "validation_map", "epochs_run", "version", "model", "note", "link")


@dataclass(frozen=True)
class RunSummary:
    """What the sweep knows of one variant's training run once it stopped waiting for it."""

    name: str
    run_id: str
    state: str
    completed: bool
    link: str | None = None
    result: JobResult | None = None
    #: Why the run failed, or why its result could not be read.
    reason: str | None = None


def sweep_row(label: str, settings: dict[str, str], run: RunSummary, card: ModelCard | None,
              registry: str) -> dict[str, Any]:
    """The table row of one variant, from its run's card (held-out evaluation) and its result.

    >>> from tasks.registry.card import Evaluation, HeldOut
    >>> from tasks.job.promotion_policy import Metrics, Verdict
    >>> scores = Metrics(mean_average_precision=83.5)
    >>> card = ModelCard(version="run-1-sweep-01-3", run_id="r1", created_at="2026-01-01T00:00:00+00:00",
    ...     model="weights/m.hdf5", evaluation=Evaluation(**scores.model_dump(), held_out=HeldOut(source="s",
    ...     fingerprint="f")), training_validation=Metrics(mean_average_precision=65.0), dataset_fingerprint="d",
    ...     spec_sha256="s", tao_image="tao", num_epochs=3, verdict=Verdict(promote=True, challenger=scores))
    >>> run = RunSummary(name="sweep-01-3", run_id="r1", state="Promoted", completed=True)
    >>> row = sweep_row("01-3", {"epochs": "3"}, run, card, "/models/app")
    >>> row["map"], row["validation_map"], row["model"]
    (83.5, 65.0, '/models/app/run-1-sweep-01-3/weights/m.hdf5')
    """
    row: dict[str, Any] = {"variant": label, **settings} | dict.fromkeys(COLUMNS)
    row |= {"flow_run": run.name, "state": run.state, "link": run.link}
    result = run.result
    if not run.completed:
        return row | {"status": "failed", "note": run.reason or f"the run ended {run.state}"}
    if card is not None:
        validation = card.training_validation.mean_average_precision if card.training_validation else None
        return row | {
            "status": "trained", "map": card.evaluation.mean_average_precision,
            "validation_map": validation if validation is not None else (result.final_map if result else None),
            "epochs_run": card.num_epochs, "version": card.version,
            "model": f"{registry.rstrip('/')}/{card.version}/{card.model}",
        }
    if result is not None:
        # A dry run publishes nothing: its result is all there is.
        note = None if result.status == "planned" else f"no model card of this run in {registry}"
        return row | {"status": result.status, "validation_map": result.final_map, "note": note,
                      "epochs_run": result.epochs_run or None,
                      "model": result.model_location or result.results_location}
    where = f": {run.link}" if run.link else ""
    because = f" ({run.reason})" if run.reason else ""
    return row | {"status": "no result",
                  "note": f"{run.state}, but no model card of this run in {registry} and no persisted result"
                          f"{because}; open the run{where}"}


def failed_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of runs that did not complete: those, and only those, fail the sweep.

    >>> failed_rows([{"status": "trained"}, {"status": "no result"}, {"status": "failed"}])
    [{'status': 'failed'}]
    """
    return [row for row in rows if row["status"] == "failed"]
