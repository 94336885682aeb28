"""The chain after training in the report: the section and its picture drawn from the model card's
chain record, report.json keeping it, `taoflow report` drawing it from the folder's model-card.json
(local and in Azurite), and `report_results` publishing it as an artifact on a real Prefect API."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
from pathlib import Path
from xml.etree import ElementTree

import pytest

from tasks.registry import CARD_FILE
from tasks.registry.chain_record import ChainRecord, StepArtifact, StepMetrics
from tasks.report import (
    REPORT_DATA,
    Comparison,
    RunReport,
    chain_chart,
    chain_summary,
    load_report,
    render_html_report,
    save_report,
)
from tasks.report.charts import PALETTE
from tasks.report.page import report_sections
from tasks.storage import StorageAccess, sync_up
from tests.registry.helpers import card_for, chain_for
from tests.report.test_report_file import taoflow
from tests.standin.traces import traces_root

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = "<img src=x onerror=alert(1)> **bold** | [link](http://evil)"


def chain_section(report: RunReport):
    return next(s for s in report_sections(report) if s.key == "report-chain")


def test_the_summary_reads_each_step_of_the_cards_record():
    record = chain_for("r1", maps=(80.0, 79.5), pruning_ratio=0.3, pruned_params=3.5)
    summary = chain_summary(record)
    assert summary.shipped == "pruned" and summary.shipping_step == "retrain"
    assert summary.decision == record.decision and summary.compared_on == record.compared_on
    by_step = {s.step: (s.mean_average_precision, s.size_mb, s.param_count, s.pruning_ratio) for s in summary.steps}
    assert list(by_step) == ["train", "prune", "retrain", "export", "engine"]
    assert by_step == {"train": (80.0, 0.5, None, None), "prune": (None, 0.156, 3.5, 0.3),
                       "retrain": (79.5, 0.156, None, None),
                       "export": (None, 0.094, None, None),  # the .onnx, not labels.txt beside it
                       "engine": (None, 0.062, None, None)}
    unpruned = ChainRecord(shipped="unpruned", decision="pruning cost 3.00 points: the unpruned model ships",
                           compared_on="the trained model",
                           steps=[StepMetrics(step="export"), StepMetrics(step="train", mean_average_precision=80.0)],
                           artifacts=[StepArtifact(step="export", kind="engine", path="chain/export/m.engine",
                                                   size_mb=9.0, sha256="e" * 64),
                                      StepArtifact(step="export", kind="onnx", path="chain/export/m.onnx",
                                                   size_mb=11.0, sha256="d" * 64)])
    summary = chain_summary(unpruned)
    assert [(s.step, s.size_mb) for s in summary.steps] == [("train", None), ("export", 11.0)]
    assert summary.shipping_step == "train"


def test_the_section_shows_each_step_and_the_picture_draws_map_and_size():
    section = chain_section(RunReport(title="t", chain=chain_summary(chain_for("r1"))))
    assert section.heading == "The chain: the pruned model ships"
    assert section.summary.startswith("The pruned model ships: pruning cost 0.50 points of mAP")
    assert section.lines == [f"compared with the champion: {chain_for('r1').compared_on}"]
    assert section.header == ["step", "held-out mAP %", "size MB", "parameters (M)", "pruning ratio"]
    assert section.rows == [["train", "80.0", "0.50", "–", "–"], ["prune", "–", "0.16", "3.50", "0.300"],
                            ["retrain (ships)", "79.5", "0.16", "–", "–"], ["export", "–", "0.09", "–", "–"],
                            ["engine", "–", "0.06", "–", "–"]]
    [picture] = section.pictures
    svg = ElementTree.fromstring(picture.data)
    bars = [r for r in svg.iter(f"{SVG}rect") if r.find(f"{SVG}title") is not None]
    by_colour = {colour: [r.find(f"{SVG}title").text for r in bars if r.get("fill") == colour]
                 for colour in PALETTE[:3]}
    assert by_colour == {
        PALETTE[0]: ["train · held-out mAP %: 80", "retrain (ships) · held-out mAP %: 79.5"],
        PALETTE[1]: ["train · model size (MB): 0.5", "prune · model size (MB): 0.156",
                     "retrain (ships) · model size (MB): 0.156", "export · model size (MB): 0.094",
                     "engine · model size (MB): 0.062"],
        PALETTE[2]: ["prune · parameters (millions): 3.5"]}
    # One row per step across the panels: a step's bars share their height on the page.
    rows = {}
    for bar in bars:
        rows.setdefault(bar.find(f"{SVG}title").text.split(" · ")[0], set()).add(bar.get("y"))
    assert all(len(ys) == 1 for ys in rows.values()) and len({y for ys in rows.values() for y in ys}) == 5
    labels = [t.text for t in svg.iter(f"{SVG}text")]
    assert {"train", "prune", "retrain (ships)", "export", "engine", "held-out mAP %", "model size (MB)"} <= set(labels)
    assert picture.alt.startswith("mAP and model size per step: train mAP 80.0 % size 0.5 MB, prune size 0.2 MB")
    assert picture.alt.endswith("; the pruned model ships")
    # Without a parameter count anywhere, no third panel.
    no_params = chain_for("r1", pruned_params=None)
    assert "parameters (millions)" not in chain_chart(chain_summary(no_params)).data.decode()


def test_the_gates_words_are_escaped_in_the_page_the_markdown_and_the_picture():
    record = chain_for("r1", decision=HOSTILE)
    record.compared_on = f"the model {HOSTILE}"
    report = RunReport(title="t", chain=chain_summary(record))
    page = render_html_report(report)
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt; **bold**" in page
    assert page.count("&lt;img src=x") == 2, "the decision and what the champion was compared on"
    markdown = chain_section(report).markdown()
    assert "<img" not in markdown and "&lt;img src=x onerror=alert\\(1\\)&gt; \\*\\*bold\\*\\*" in markdown
    assert "](http://evil)" not in markdown and "\\[link\\]\\(http://evil\\)" in markdown
    ElementTree.fromstring(chain_section(report).pictures[0].data)


def test_the_html_report_holds_the_chain_picture_and_report_json_keeps_the_chain(tmp_path):
    summary = chain_summary(chain_for("r1"))
    report = RunReport(title="parking", chain=summary, comparison=Comparison(challenger={"car": 79.5}))
    save_report(report, tmp_path)
    page = (tmp_path / "report.html").read_text()
    section = page[page.index('<section id="report-chain">'):]
    section = section[:section.index("</section>")]
    [uri] = re.findall(r'src="data:image/svg\+xml;base64,([^"]+)"', section)
    assert base64.b64decode(uri) == chain_chart(summary).data
    assert "<td>retrain (ships)</td><td>79.5</td><td>0.16</td>" in section and "<td>0.300</td>" in section
    assert page.index('id="report-comparison"') < page.index('id="report-chain"'), "the outcome comes first"
    stored = json.loads((tmp_path / REPORT_DATA).read_text())
    assert stored["chain"]["shipped"] == "pruned" and len(stored["chain"]["steps"]) == 5
    assert load_report(tmp_path).chain == summary


def results_folder(folder: Path, *, report_chain: ChainRecord | None, card: bytes | None) -> Path:
    """A version folder as the flow publishes it: TAO's status.json, the report, the card."""
    folder.mkdir(parents=True)
    shutil.copyfile(traces_root() / "train" / "zero-based" / "complete" / "status.json", folder / "status.json")
    save_report(RunReport(title="parking / resnet18_detector",
                          chain=chain_summary(report_chain) if report_chain else None), folder)
    if card is not None:
        (folder / CARD_FILE).write_bytes(card)
    return folder


def card_with(decision: str, version: str = "r1") -> bytes:
    return card_for(version, {"car": 79.5}, run_id="run-1", created_at="2026-12-06T02:00:00+00:00",
                    chain=chain_for(version, decision=decision)).to_json()


def test_taoflow_report_draws_the_chain_from_the_folders_model_card(tmp_path):
    folder = results_folder(tmp_path / "r1", report_chain=chain_for("r1", decision="words of report.json"),
                            card=card_with("words of the card"))
    out = tmp_path / "page.html"
    done = taoflow("report", str(folder), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "chain, training curves" in done.stderr and "warning" not in done.stderr
    page = out.read_text()
    assert "The pruned model ships: words of the card" in page and "words of report.json" not in page
    assert "<td>prune</td><td>–</td><td>0.16</td><td>3.50</td><td>0.300</td>" in page
    # A card without a chain (published before the chain was recorded) draws none from the card.
    older = results_folder(tmp_path / "r0", report_chain=None, card=card_for(
        "r0", {"car": 70.0}, run_id="run-0", created_at="2026-12-05T02:00:00+00:00").to_json())
    done = taoflow("report", str(older), "--out", str(out))
    assert done.returncode == 0 and "chain" not in done.stderr and 'id="report-chain"' not in out.read_text()


@pytest.mark.parametrize("damage, said", [("garbage", "is damaged"), ("link", "symlink"),
                                          ("huge", "more than the 1,048,576 taoflow reads of it"),
                                          ("fifo", "not the regular file")])
def test_a_card_that_cannot_be_read_leaves_the_chain_report_json_holds(tmp_path, damage, said):
    """The card is the folder's, untrusted: bounded, no link followed, no FIFO opened (it would block)."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / CARD_FILE).write_bytes(card_with("words of a card outside the folder"))
    planted = {"garbage": b'{"version": "r1", "chain": ', "huge": card_with("words of a huge card") + b" " * (2 << 20)}
    folder = results_folder(tmp_path / "r1", report_chain=chain_for("r1", decision="words of report.json"),
                            card=planted.get(damage))
    if damage == "link":
        os.symlink(outside / CARD_FILE, folder / CARD_FILE)
    elif damage == "fifo":
        os.mkfifo(folder / CARD_FILE)
    out = tmp_path / "page.html"
    done = taoflow("report", str(folder), "--out", str(out))
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert "warning: the chain is drawn from report.json, not the model card" in done.stderr
    assert said in done.stderr, done.stderr
    page = out.read_text()
    assert "words of report.json" in page and "outside the folder" not in page and "huge card" not in page


@pytest.mark.services
def test_taoflow_report_reads_the_chain_card_of_a_folder_in_azurite(azurite, blob_container, tmp_path, monkeypatch):
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)
    folder = results_folder(tmp_path / "r1", report_chain=None, card=card_with("words of the card in Azurite"))
    location = f"{azurite.blob_endpoint}/{blob_container.container_name}/models/parking/r1"
    sync_up(folder, location, access=StorageAccess(connection_string=azurite.connection_string))
    before = {b.name: b.etag for b in blob_container.list_blobs()}
    out = tmp_path / "page.html"
    done = taoflow("report", location, "-o", str(out), AZURE_STORAGE_CONNECTION_STRING=azurite.connection_string)
    assert done.returncode == 0, done.stderr
    assert "The pruned model ships: words of the card in Azurite" in out.read_text()
    assert {b.name: b.etag for b in blob_container.list_blobs()} == before, "taoflow report writes nothing"


@pytest.mark.services
def test_report_results_publishes_the_chain_and_saves_it_beside_the_model(prefect_api, tmp_path):
    from prefect import flow

    from tasks.report.artifacts import report_results
    from tests.flow.test_flow_local import artifacts_of

    shutil.copyfile(traces_root() / "train" / "one-based" / "complete" / "status.json", tmp_path / "status.json")
    record = chain_for("r1", decision=HOSTILE)

    @flow(name="report-chain")
    def report_chain() -> RunReport:
        return report_results(RunReport(title="parking"), tmp_path, Comparison(challenger={"car": 79.5}), chain=record)

    state = report_chain(return_state=True)
    assert state.is_completed(), state.message
    artifact = artifacts_of(state.state_details.flow_run_id)["report-chain"]
    assert artifact.data.count("](data:image/svg+xml;base64,") == 1 and "retrain \\(ships\\)" in artifact.data
    assert "<img src=x" not in artifact.data and "&lt;img src=x" in artifact.data
    assert load_report(tmp_path).chain == chain_summary(record)
