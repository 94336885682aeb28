"""`report.json` + `report.html` beside the model, and `taoflow report` redrawing the same page from a
published results folder, on disk and in a real Azurite, read-only, without Prefect."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tasks.job.demo import generate_demo_dataset
from tasks.report import (
    REPORT_HTML,
    Comparison,
    ReportError,
    RunReport,
    contact_sheet,
    dataset_summary,
    load_report,
    render_html_report,
    save_report,
    training_history,
)
from tasks.storage import StorageAccess, sync_up
from tests.deployments.server import REPO
from tests.standin.traces import traces_root

DATA_URI = re.compile(r'src="(data:image/[^"]+)"')


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> tuple[Path, RunReport]:
    """A results folder as the flow leaves it before publishing: TAO's status.json and the report."""
    root = tmp_path_factory.mktemp("run")
    data = generate_demo_dataset(root / "data", count=12).root
    folder = root / "results"
    folder.mkdir()
    shutil.copyfile(traces_root() / "train" / "zero-based" / "complete" / "status.json", folder / "status.json")
    (folder / "weights").mkdir()
    (folder / "weights" / "model.hdf5").write_bytes(b"stand-in weights")
    report = RunReport(title="parking / resnet18_detector", run_id="run-1",
                       dataset=dataset_summary(data, {"rectangle": "rectangle", "ellipse": "ellipse"}),
                       samples=contact_sheet(data, count=4), training=training_history(folder / "status.json"),
                       comparison=Comparison(challenger={"car": 70.0}, champion={"car": 68.0}, outcome="Promoted"))
    save_report(report, folder)
    return folder, report


def taoflow(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "taoflow", *args], capture_output=True, text=True, timeout=300,
                          cwd=REPO, env={**os.environ, **env})


def test_a_published_folder_redraws_the_page_the_run_saved(results, tmp_path):
    folder, report = results
    published = tmp_path / "models" / "parking" / "run-1"
    sync_up(folder, published)
    loaded = load_report(published)
    assert loaded.notes == [], "a published folder needs no warning"
    assert loaded.model_dump(exclude={"results_location"}) == report.model_dump(exclude={"results_location"})
    saved = (folder / REPORT_HTML).read_text()
    # The same page, which now also says where the model is.
    assert render_html_report(loaded) == saved.replace("flow run run-1", f"flow run run-1 · model at {published}")


def test_taoflow_report_on_a_local_folder_needs_no_prefect(results, tmp_path):
    folder, _ = results
    out = tmp_path / "page.html"
    done = taoflow("report", str(folder), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "champion vs new model, training curves, dataset, sample frames" in done.stderr
    assert "no _taoflow_published.json" in done.stderr, "an unpublished folder is said to be one"
    assert DATA_URI.findall(out.read_text()) == DATA_URI.findall((folder / REPORT_HTML).read_text())
    probe = ("import sys; from taoflow.cli import main\ntry: main(sys.argv[1:])\nexcept SystemExit: pass\n"
             "print('prefect' in sys.modules)")
    imported = subprocess.run([sys.executable, "-c", probe, "report", str(folder), "--out", str(out)],
                              capture_output=True, text=True, timeout=300, cwd=REPO)
    assert imported.stdout.strip() == "False", imported.stderr
    assert "report" in taoflow("--help").stdout


def test_only_the_training_curves_from_a_folder_without_report_json(tmp_path):
    shutil.copyfile(traces_root() / "train" / "one-based" / "complete" / "status.json", tmp_path / "status.json")
    report = load_report(tmp_path)
    assert report.dataset is None and report.comparison is None
    assert [v.mean_ap for v in report.training.validations] == [45.0, 55.0, 65.0]


@pytest.mark.parametrize("damage", ["links", "garbage", "nothing"])
def test_a_folder_without_a_usable_report_is_one_clear_error(tmp_path, damage):
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copyfile(traces_root() / "train" / "one-based" / "complete" / "status.json", outside / "status.json")
    folder = tmp_path / "results"
    folder.mkdir()
    if damage == "links":  # planted links are not followed: the folder has nothing of its own
        os.symlink(outside / "status.json", folder / "status.json")
        os.symlink(outside / "status.json", folder / "report.json")
    elif damage == "garbage":
        (folder / "report.json").write_text('{"title": "x", "samples": {"title": "s", "mime": "image/png", '
                                            '"data": "PHNjcmlwdD4=", "width": 1, "height": 1}}')
    with pytest.raises(ReportError) as caught:
        load_report(folder)
    assert ("report.json is damaged" if damage == "garbage" else "no status.json or report.json") in caught.value.what
    done = taoflow("report", str(folder), "--out", str(tmp_path / "x.html"))
    assert done.returncode == 1 and "Traceback" not in done.stderr and "how to fix:" in done.stderr
    assert not (tmp_path / "x.html").exists()


@pytest.mark.services
def test_taoflow_report_on_a_folder_in_azurite_reads_only(results, azurite, blob_container, tmp_path, monkeypatch):
    folder, _ = results
    location = f"{azurite.blob_endpoint}/{blob_container.container_name}/models/parking/run-1"
    env = {"AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string}
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)

    sync_up(folder, location, access=StorageAccess(connection_string=azurite.connection_string))
    before = {b.name: b.etag for b in blob_container.list_blobs()}
    out = tmp_path / "from-blob.html"
    done = taoflow("report", location, "-o", str(out), **env)
    assert done.returncode == 0, done.stderr
    assert "no _taoflow_published.json" not in done.stderr
    page = out.read_text()
    assert DATA_URI.findall(page) == DATA_URI.findall((folder / REPORT_HTML).read_text())
    assert f"model at {location}" in page and "AccountKey" not in page
    assert {b.name: b.etag for b in blob_container.list_blobs()} == before, "taoflow report writes nothing"
    assert json.loads(blob_container.download_blob("models/parking/run-1/report.json").readall())["title"] \
        == "parking / resnet18_detector"


def test_a_status_line_nested_100000_deep_is_a_foreign_line_for_taoflow_report(tmp_path):
    """status.json is written by the container: one line of `[` x 100,000 crashed the report with
    RecursionError. It is now skipped like any foreign line, and the curves come from the others."""
    lines = (traces_root() / "train" / "one-based" / "complete" / "status.json").read_bytes().splitlines(keepends=True)
    (tmp_path / "status.json").write_bytes(b"".join([lines[0], b"[" * 100_000 + b"\n", b'{"a": ' * 5_000 + b"\n",
                                                     *lines[1:]]))
    done = taoflow("report", str(tmp_path), "--out", str(tmp_path / "page.html"))
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert [v.mean_ap for v in load_report(tmp_path).training.validations] == [45.0, 55.0, 65.0]
