"""The report beside the model: saved into a results folder before it is published, and read
back from a published one (local or in Blob Storage, read-only) by `taoflow report`.

A results folder holds `status.json` (TAO's, the source of the training curves) and, when the
run made one, `report.json` (what the run knew: the dataset's shape, the sample frames, the
champion/challenger comparison, the chain after training) and `report.html` (the page).
`taoflow report` redraws the page from the first two (the chain from the folder's model card when
it has one), so it needs neither Prefect, nor a GPU, nor the dataset.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from pydantic import ValidationError

from tasks.errors import ReportError
from tasks.files import read_regular, write_atomic
from tasks.launch.status import MAX_STATUS_BYTES
from tasks.report.chain_view import ChainFacts, chain_summary
from tasks.report.contents import RunReport
from tasks.report.curves import training_history
from tasks.report.page import render_html_report
from tasks.storage import StorageAccess, open_store, parse_location
from tasks.storage.manifest import PUBLISHED_MARKER
from tasks.storage.stores import LocalStore, Store

REPORT_HTML = "report.html"
REPORT_DATA = "report.json"
STATUS = "status.json"
#: A report.json holds a contact sheet of a few hundred KB; anything far larger is not ours.
MAX_REPORT_BYTES = 32 << 20


def save_report(report: RunReport, folder: Path) -> list[Path]:
    """Write `report.json` and `report.html` into a local results folder (before it is published).

    >>> import tempfile; folder = Path(tempfile.mkdtemp())
    >>> [p.name for p in save_report(RunReport(title="demo"), folder)]
    ['report.json', 'report.html']
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return [write_atomic(folder / REPORT_DATA, report.model_dump_json(indent=1).encode("utf-8")),
            write_atomic(folder / REPORT_HTML, render_html_report(report).encode("utf-8"))]


def _read(store: Store, sizes: dict[str, int], name: str, limit: int) -> bytes | None:
    """A file of the folder, or None when it is absent, not a regular file, or over `limit`."""
    if name not in sizes or sizes[name] > limit:
        return None
    if isinstance(store, LocalStore):
        return read_regular(store.root / name, limit)
    return store.read(name, limit)


def load_report(location: str | Path, access: StorageAccess | None = None) -> RunReport:
    """The run report of a results folder: its report.json, with the curves from its status.json.

    Raises `ReportError` when the folder holds neither file.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = save_report(RunReport(title="parking / resnet18"), folder)
    >>> load_report(folder).title
    'parking / resnet18'
    """
    shown = parse_location(location).display
    store = open_store(location, access)
    listing = store.list()
    if listing.single:
        raise ReportError(f"{shown} is a file, not a results folder", where=shown,
                          fix="give the folder that holds status.json (the model's results folder)")
    sizes = {name: entry.size for name, entry in listing.entries.items() if "/" not in name}
    data = _read(store, sizes, REPORT_DATA, MAX_REPORT_BYTES)
    status = _read(store, sizes, STATUS, MAX_STATUS_BYTES)
    if data is None and status is None:
        raise ReportError(
            f"no {STATUS} or {REPORT_DATA} in {shown}", where=shown,
            fix="give the results folder of a training run (the folder with status.json and weights/); "
                "`taoflow sync down` shows what a location holds")
    try:
        report = RunReport.model_validate_json(data) if data is not None else RunReport(title=_title(shown))
    except ValidationError as exc:
        raise ReportError(f"{REPORT_DATA} is damaged or not taoflow's ({exc.error_count()} problems, first: "
                          f"{exc.errors()[0]['msg']})", where=f"{shown}/{REPORT_DATA}",
                          fix="re-publish the run, or remove report.json to draw the training curves alone") from None
    if status is not None:
        with tempfile.TemporaryDirectory(prefix="taoflow-report-") as scratch:
            path = Path(scratch) / STATUS
            path.write_bytes(status)
            report.training = training_history(path)
    report.results_location = shown
    if PUBLISHED_MARKER not in sizes:
        report.notes.append(f"{shown} has no {PUBLISHED_MARKER}: it is not a completely published results "
                            "folder, the run may still be going or have failed")
    return report


def _title(shown: str) -> str:
    parts = [p for p in shown.split("?")[0].rstrip("/").split("/") if p]
    return " / ".join(parts[-2:]) if parts else shown


def render_report_file(location: str | Path, out: Path, access: StorageAccess | None = None,
                       chain: ChainFacts | None = None) -> RunReport:
    """`taoflow report`: the HTML report of a results folder, written to `out`. `chain`, the chain
    record of the folder's model card, is drawn instead of the one report.json holds (the card is
    the record of the model, as status.json is of the training).

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = save_report(RunReport(title="parking"), folder)
    >>> render_report_file(folder, folder / "out.html").title, (folder / "out.html").read_text().startswith("<!DOCTYPE html>")
    ('parking', True)
    """
    report = load_report(location, access)
    if chain is not None:
        report.chain = chain_summary(chain)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out, render_html_report(report).encode("utf-8"))
    return report
