"""Finding the cards of given training runs in a registry by the run id each card records (a sweep's
table), whatever their version folders are called."""

from __future__ import annotations

from tasks.registry import CARD_FILE
from tasks.registry.catalog import cards_of_runs
from tests.registry.helpers import card_for, publish_and_promote


def test_cards_are_found_by_run_id_and_a_damaged_one_hides_no_other(tmp_path):
    app = str(tmp_path / "registry" / "shapes")
    cards = [card_for(version, {"ellipse": ap}, run_id=run, created_at=f"2026-01-0{i}T00:00:00+00:00")
             for i, (version, ap, run) in enumerate([("nightly-a1b2", 80.0, "run-a"), ("x-9f", 70.0, "run-b"),
                                                     ("broken", 60.0, "run-c")], start=1)]
    for card in cards:
        publish_and_promote(app, card, tmp_path / "work")
    (tmp_path / "registry" / "shapes" / "broken" / CARD_FILE).write_text("{not a card")
    # Published but unfinished (no marker): not a version, even though its card names a run we ask for.
    unfinished = tmp_path / "registry" / "shapes" / "half"
    unfinished.mkdir()
    (unfinished / CARD_FILE).write_bytes(card_for("half", {"ellipse": 1.0}, run_id="run-d", created_at="x").to_json())

    found = cards_of_runs(app, ["run-a", "run-b", "run-c", "run-d", "run-unknown"])
    assert {run: (card.version, card.evaluation.mean_average_precision) for run, card in found.items()} == {
        "run-a": ("nightly-a1b2", 80.0), "run-b": ("x-9f", 70.0)}
    assert cards_of_runs(app, ["run-b"]).keys() == {"run-b"}
    assert cards_of_runs(str(tmp_path / "nothing-here"), ["run-a"]) == {}
