"""A version folder belongs to one run (tasks/registry/claims.py), on a local folder and on real
Azurite: of runs racing for one folder from separate processes exactly one gets it, the others are
told whose it is; a folder holding another run's published model (a champion from before claims) is
refused; the owner's retry goes on; a run never publishes into a folder that is not its own."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tasks.errors import FolderClaimed
from tasks.job.request import join_location
from tasks.registry import CLAIM_FILE, check_claim, claim_version
from tasks.storage import open_store
from tests.registry.helpers import card_for, publish_and_promote

REPO = Path(__file__).resolve().parents[2]


def claim_text(app: str, version: str) -> dict:
    return json.loads(open_store(join_location(app, version)).read(CLAIM_FILE, 1 << 16))


def test_runs_racing_from_separate_processes_one_gets_the_folder(app, tmp_path):
    go = tmp_path / "go"
    code = (
        "import os, sys, time\n"
        "from tasks.errors import FolderClaimed\n"
        "from tasks.registry import claim_version\n"
        f"while not os.path.exists({str(go)!r}): time.sleep(0.01)\n"
        "try:\n"
        "    print('claimed', claim_version(sys.argv[1], 'nightly-20261206T123724Z', sys.argv[2]).run_id)\n"
        "except FolderClaimed as exc:\n"
        "    print('refused', exc.what)\n"
    )
    racers = [subprocess.Popen([sys.executable, "-c", code, app, f"run-{i}"], cwd=REPO, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True) for i in range(6)]
    go.touch()
    outputs = [p.communicate(timeout=120) for p in racers]
    lines = [out.strip() for out, _ in outputs]
    assert [p.returncode for p in racers] == [0] * 6, [err for _, err in outputs]
    winners = [line.split()[1] for line in lines if line.startswith("claimed")]
    assert len(winners) == 1, lines
    refused = [line for line in lines if line.startswith("refused")]
    assert len(refused) == 5 and all(f"belongs to another run: {winners[0]}" in line for line in refused), lines
    assert claim_text(app, "nightly-20261206T123724Z")["run_id"] == winners[0]
    # The owner's retry (a task retry, a flow retry, resume: true) finds its own claim and goes on.
    assert claim_version(app, "nightly-20261206T123724Z", winners[0]).run_id == winners[0]
    assert check_claim(app, "nightly-20261206T123724Z", winners[0]).run_id == winners[0]


def test_a_folder_with_another_runs_published_model_is_never_a_new_runs_target(app, tmp_path):
    """The champion's folder (published before claims existed, so without one) is written by no run
    but its own."""
    champion = card_for("r1", {"car": 70.0}, run_id="run-1", created_at="2026-11-01T00:00:00+00:00")
    assert publish_and_promote(app, champion, tmp_path / "work").promoted
    with pytest.raises(FolderClaimed) as caught:
        claim_version(app, "r1", "run-2")
    assert "already holds a model published by run-1" in caught.value.render()
    assert "subfolder_per_run" in caught.value.fix
    assert open_store(join_location(app, "r1")).read(CLAIM_FILE, 1 << 16) is None, "a refused run leaves no claim"
    assert claim_version(app, "r1", "run-1").run_id == "run-1"  # the champion's own run, retried
    assert claim_version(app, "r2", "run-2").run_id == "run-2"


def test_publishing_checks_the_claim_again(app):
    with pytest.raises(FolderClaimed, match="no _taoflow_claim.json"):
        check_claim(app, "v1", "run-a")
    claim_version(app, "v1", "run-a")
    with pytest.raises(FolderClaimed, match="belongs to another run: run-a"):
        check_claim(app, "v1", "run-b")
    open_store(app).write(f"v2/{CLAIM_FILE}", b"[" * 100)
    with pytest.raises(FolderClaimed, match="a damaged _taoflow_claim.json"):
        check_claim(app, "v2", "run-a")
    with pytest.raises(FolderClaimed, match="belongs to another run"):
        claim_version(app, "v1", "run-b")
    assert claim_text(app, "v1")["run_id"] == "run-a", "a refused claim never rewrites the owner's"


def test_a_planted_link_at_the_claim_is_not_followed(tmp_path):
    app = tmp_path / "models" / "shapes"
    (app / "v1").mkdir(parents=True)
    secret = tmp_path / "secret.json"
    secret.write_text(json.dumps({"run_id": "run-a"}))
    (app / "v1" / CLAIM_FILE).symlink_to(secret)
    with pytest.raises(Exception) as caught:
        claim_version(str(app), "v1", "run-a")
    assert "symlink" in str(caught.value)
    assert secret.read_text() == json.dumps({"run_id": "run-a"})
