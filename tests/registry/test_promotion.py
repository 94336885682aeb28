"""`promote` when the champion moved, when the lock is held, when a retry finds its own swap done;
and the deployments' version folders (prefect.yaml)."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import yaml

from tasks.registry import read_champion, read_pointer
from tasks.registry.pointer import LOCK_FILE
from tasks.registry.promotion import promote
from tests.registry.helpers import card_for, publish_and_promote

REPO = Path(__file__).resolve().parents[2]


def published(app: str, version: str, tmp_path: Path, run_id: str | None = None):
    card = card_for(version, {"car": 70.0}, run_id=run_id or f"run-{version}", created_at="2026-11-01T00:00:00+00:00")
    return card, publish_and_promote(app, card, tmp_path / "work")


def test_a_champion_that_moved_after_the_evaluation_is_not_replaced(tmp_path):
    app = str(tmp_path / "shapes")
    published(app, "r1", tmp_path)
    compared, champion = read_pointer(app), read_champion(app)  # what run 3 evaluated against
    published(app, "r2", tmp_path)  # meanwhile run 2 promoted (same score: mAP may not drop, it did not)
    r3 = card_for("r3", {"car": 71.0}, run_id="run-r3", created_at="2026-11-02T00:00:00+00:00")
    outcome = promote(app, r3, r3.verdict, compared, champion)
    assert not outcome.promoted and outcome.champion_after == "r2"
    assert "the champion changed while this run was evaluating (now r2" in outcome.reasons[-1]
    assert read_champion(app).version == "r2"


def test_a_held_lock_is_waited_for_then_reported(tmp_path):
    app = str(tmp_path / "shapes")
    published(app, "r1", tmp_path)
    r2 = card_for("r2", {"car": 75.0}, run_id="run-r2", created_at="2026-11-02T00:00:00+00:00")
    fd = os.open(Path(app) / LOCK_FILE, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        outcome = promote(app, r2, r2.verdict, read_pointer(app), read_champion(app), wait=0.5)
    finally:
        os.close(fd)
    assert not outcome.promoted and outcome.reasons == ["another run held the champion lock for 0.5 s; run again"]
    assert read_champion(app).version == "r1"


def test_a_retry_that_finds_its_own_swap_done_reports_promoted(tmp_path):
    app = str(tmp_path / "shapes")
    published(app, "r1", tmp_path)
    compared, champion = read_pointer(app), read_champion(app)
    r2 = card_for("r2", {"car": 75.0}, run_id="run-r2", created_at="2026-11-02T00:00:00+00:00")
    assert promote(app, r2, r2.verdict, compared, champion).promoted
    again = promote(app, r2, r2.verdict, compared, champion)  # the first answer was lost
    assert again.promoted and again.state_name == "Promoted" and read_champion(app).previous == "r1"


def test_scheduled_deployment_runs_publish_a_version_each():
    definitions = yaml.safe_load((REPO / "prefect.yaml").read_text())["definitions"]
    assert definitions["request"]["subfolder_per_run"] is True
    trigger = definitions["triggers"]["dataset_ready"]["parameters"]["request"]
    assert trigger["subfolder_per_run"] is False and "event.occurred" in trigger["model_subfolder"]
