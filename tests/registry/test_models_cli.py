"""`taoflow models list|show` as a user runs them, on a registry in real Azurite built the way the
flow builds it (card inside the published folder, then the promotion)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tasks.registry import Metrics, read_champion
from tests.registry.helpers import CHAIN_FILES, card_for, chain_for, publish_and_promote

pytestmark = pytest.mark.services


def taoflow(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "taoflow", *args], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ))


@pytest.fixture
def registry(azurite_env, blob_container, tmp_path):
    """Three versions: r1 promoted, r2 worse (refused), r3 better (promoted); and one half-published folder."""
    app = f"{azurite_env.blob_endpoint}/{blob_container.container_name}/models/shapes"
    r1 = card_for("r1", {"ellipse": 80.0, "rectangle": 70.0}, run_id="run-1", created_at="2026-11-01T02:00:00+00:00",
                  dataset="a" * 64)
    assert publish_and_promote(app, r1, tmp_path).promoted
    champion = Metrics(mean_average_precision=75.0, average_precision={"ellipse": 80.0, "rectangle": 70.0})
    r2 = card_for("r2", {"ellipse": 70.0, "rectangle": 70.0}, run_id="run-2", created_at="2026-11-02T02:00:00+00:00",
                  dataset="b" * 64, champion=champion)
    assert not publish_and_promote(app, r2, tmp_path).promoted
    r3 = card_for("r3", {"ellipse": 85.0, "rectangle": 75.0}, run_id="run-3", created_at="2026-11-03T02:00:00+00:00",
                  dataset="c" * 64, champion=champion)
    assert publish_and_promote(app, r3, tmp_path).promoted
    # A folder whose upload never finished is no version.
    blob_container.upload_blob("models/shapes/r4/model-card.json", r3.to_json())
    blob_container.upload_blob("models/shapes/r4/_taoflow_publishing.json", b"{}")
    return app


def test_models_list_shows_versions_the_champion_and_datasets(registry):
    result = taoflow("models", "list", registry, "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [(r["version"], r["champion"], r["mean_average_precision"]) for r in rows] == [
        ("r1", False, 75.0), ("r2", False, 70.0), ("r3", True, 80.0)]
    assert [r["dataset_fingerprint"][0] for r in rows] == ["a", "b", "c"]
    table = taoflow("models", "list", registry)
    assert table.returncode == 0, table.stderr
    line = next(l for l in table.stdout.splitlines() if " r3 " in f" {l} ")
    assert line.lstrip().startswith("*") and "80.00" in line and "c" * 12 in line
    assert "r4" not in table.stdout and "3 version(s)" in table.stdout


def test_models_show_prints_the_champions_card_or_a_named_one(registry):
    champion = taoflow("models", "show", registry, "--json")
    assert champion.returncode == 0, champion.stderr
    card = json.loads(champion.stdout)
    assert card["version"] == "r3" and card["evaluation"]["average_precision"] == {"ellipse": 85.0, "rectangle": 75.0}
    refused = json.loads(taoflow("models", "show", registry, "r2", "--json").stdout)
    assert refused["verdict"]["promote"] is False
    assert refused["verdict"]["reasons"][0].startswith("mAP 70.00 is 5.00 points below the champion")
    human = taoflow("models", "show", registry, "r2")
    assert human.returncode == 0
    assert "do not promote" in human.stdout and "ellipse" in human.stdout and "(champion)" not in human.stdout
    assert "chain:" not in human.stdout, "a card without a chain record shows none"
    assert "(champion)" in taoflow("models", "show", registry).stdout
    assert read_champion(registry).previous == "r1"


def test_an_unknown_version_is_one_clear_message(registry):
    result = taoflow("models", "show", registry, "r9")
    assert result.returncode == 1
    assert "no published model version 'r9'" in result.stderr and "taoflow models list" in result.stderr
    assert "Traceback" not in result.stderr


def test_versions_are_listed_and_shown_without_a_readable_pointer(registry, blob_container):
    """The damaged pointer's own fix says "restore it from the model cards (taoflow models list)":
    listing and showing versions must work without it, and say it is damaged."""
    blob_container.upload_blob("models/shapes/champion.json", b'{"version": "r3", "mean_a', overwrite=True)
    listed = taoflow("models", "list", registry, "--json")
    assert listed.returncode == 0, listed.stderr
    assert [(r["version"], r["champion"]) for r in json.loads(listed.stdout)] == [
        ("r1", False), ("r2", False), ("r3", False)]
    assert "warning: no version is marked champion" in listed.stderr and "champion.json is damaged" in listed.stderr
    shown = taoflow("models", "show", registry, "r3")
    assert shown.returncode == 0 and "mAP 80.00" in shown.stdout and "(champion)" not in shown.stdout, shown.stderr
    assert "champion.json is damaged" in shown.stderr and "Traceback" not in shown.stderr
    champion = taoflow("models", "show", registry)  # which version is the champion: only the pointer says
    assert champion.returncode == 1 and "champion.json is damaged" in champion.stderr
    assert "Traceback" not in champion.stderr


def test_models_list_never_cuts_a_version_name_when_piped(azurite_env, blob_container, tmp_path):
    """Two versions started in the same second differ only in their run id's characters at the end:
    piped (no terminal, 80 columns for rich) the table used to show both as `run-20261206T123…`."""
    app = f"{azurite_env.blob_endpoint}/{blob_container.container_name}/models/long"
    names = [f"nightly-with-a-long-model-subfolder-20261206T123724Z-{tag}" for tag in ("3f2a9c41", "8be01d77")]
    for n, name in enumerate(names):
        card = card_for(name, {"ellipse": 80.0 + n}, run_id=f"run-{n}", created_at=f"2026-12-06T12:37:2{n}+00:00",
                        dataset="held-out-data-" + "d" * 60)
        publish_and_promote(app, card, tmp_path)
    table = taoflow("models", "list", app)
    assert table.returncode == 0, table.stderr
    assert all(name in table.stdout for name in names), table.stdout
    assert "…" not in table.stdout


def test_models_show_prints_the_chain_and_every_files_full_sha256_when_piped(azurite_env, blob_container, tmp_path):
    app = f"{azurite_env.blob_endpoint}/{blob_container.container_name}/models/chained"
    # The gates' words are the run's: a terminal escape in them is not passed to the terminal.
    chain = chain_for("c1", decision="pruning cost 0.50 points of mAP\x1b[2J, at most 1.00 allowed")
    card = card_for("c1", {"ellipse": 80.0, "rectangle": 79.0}, run_id="run-c1",
                    created_at="2026-12-06T02:00:00+00:00", chain=chain)
    assert publish_and_promote(app, card, tmp_path).promoted
    shown = taoflow("models", "show", app, "c1")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert "chain: the pruned model ships: pruning cost 0.50 points of mAP [2J, at most 1.00 allowed" in lines
    assert "\x1b" not in shown.stdout
    assert f"compared with the champion: {chain.compared_on}" in lines
    heading = lines.index("files (relative to the version folder):")
    steps = lines[lines.index(f"compared with the champion: {chain.compared_on}") + 1:heading]
    assert [line.split() for line in steps] == [
        ["step", "mAP", "%", "size", "MB", "params", "M", "pruning", "ratio"], ["train", "80.00", "0.50", "-", "-"],
        ["prune", "-", "0.16", "3.50", "0.300"], ["retrain", "(ships)", "79.50", "0.16", "-", "-"],
        ["export", "-", "0.09", "-", "-"], ["engine", "-", "0.06", "-", "-"]]
    # Every file with its whole SHA-256 and path, on one line each (the pipe has no terminal width).
    files = lines[heading + 1:]
    assert files[0].split() == ["step", "kind", "size", "MB", "sha256", "path"]
    assert [line.split() for line in files[1:]] == [
        [a.step, a.kind, f"{a.size_mb:.2f}", a.sha256, a.path] for a in chain.artifacts]
    assert [a.path for a in chain.artifacts] == [path for _, _, path, _ in CHAIN_FILES]
    assert "…" not in shown.stdout
    as_json = json.loads(taoflow("models", "show", app, "c1", "--json").stdout)
    assert as_json["chain"] == chain.model_dump(mode="json")
