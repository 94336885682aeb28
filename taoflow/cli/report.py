"""`taoflow report RESULTS_LOCATION [--out FILE]`: the run's HTML report from a finished results
folder (local, Blob Storage or AzureML datastore), read-only, without Prefect or a GPU."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from taoflow.cli.output import err_console


def register(app: typer.Typer) -> None:
    """Add this module's command to the root app."""
    app.command("report")(report)


def report(
    location: str = typer.Argument(..., help="The results folder: local path, az://, https://...blob... or azureml://."),
    out: Path = typer.Option(Path("report.html"), "--out", "-o", help="Where to write the HTML file."),
    credentials: Optional[str] = typer.Option(
        None, "--credentials", "-c", metavar="BLOCK",
        help="Name of a Prefect AzureBlobStorageCredentials block (default: env AZURE_STORAGE_CONNECTION_STRING)."),
) -> None:
    """Draw the report of a finished run (training curves, dataset, sample frames, champion vs new model,
    the chain after training) into one self-contained HTML file: every picture inline, nothing fetched
    when it is opened. The chain is drawn from the folder's model-card.json when it has one."""
    # imported here so `taoflow --help` does not pay for Pillow and the storage SDK
    from tasks.registry.catalog import folder_card_or_problem
    from tasks.report import render_report_file
    from tasks.storage import StorageAccess

    access = StorageAccess(credentials=credentials)
    card, problem = folder_card_or_problem(location, access)
    if problem is not None:
        err_console.print(f"warning: the chain is drawn from report.json, not the model card: {problem.render()}",
                          markup=False)
    made = render_report_file(location, out, access, chain=card.chain if card is not None else None)
    parts = [name for name, present in (("champion vs new model", made.comparison), ("chain", made.chain),
                                        ("training curves", made.training), ("dataset", made.dataset),
                                        ("sample frames", made.samples)) if present]
    err_console.print(f"wrote {out} ({out.stat().st_size // 1024} KB): {', '.join(parts) or 'no pictures'}",
                      markup=False)
    for note in made.notes:
        err_console.print(f"note: {note}", markup=False)
