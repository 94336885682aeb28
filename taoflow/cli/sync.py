"""`taoflow sync down LOCATION DIR` and `taoflow sync up DIR LOCATION`: no server needed.

Credentials: `--credentials BLOCK` (a prefect-azure AzureBlobStorageCredentials block), else env
AZURE_STORAGE_CONNECTION_STRING, else a SAS in the URL or DefaultAzureCredential.
A progress bar is drawn on stderr when it is a terminal; notices (symlinks not followed, waiting
for another sync of the same target) are printed there as warnings.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import typer

from taoflow.cli.output import err_console, is_terminal, print_json
from tasks.storage import StorageAccess, SyncProgress, SyncReport, sync_down, sync_up
from tasks.storage.sync import DEFAULT_CONCURRENCY
from tasks.storage.transfer import LOCK_WAIT_SECONDS

sync_app = typer.Typer(help="Copy data between local folders, Azure Blob Storage and AzureML datastores.",
                       no_args_is_help=True)

_CREDENTIALS = typer.Option(
    None, "--credentials", "-c", metavar="BLOCK",
    help="Name of a Prefect AzureBlobStorageCredentials block (default: env AZURE_STORAGE_CONNECTION_STRING).",
)
_CONCURRENCY = typer.Option(DEFAULT_CONCURRENCY, "--concurrency", min=1, max=256, help="Parallel transfers.")
_JSON = typer.Option(False, "--json", help="Print the report as JSON on stdout.")
_WAIT = typer.Option(
    LOCK_WAIT_SECONDS, "--wait", min=0, metavar="SECONDS",
    help="How long to wait for another sync of the same target to finish (0: fail at once if busy).",
)


@contextmanager
def _without_aiohttp() -> Iterator[None]:
    """While a sync command runs, aiohttp looks "not installed" to what this process imports.

    azure-storage-blob imports aiohttp only to recognise its async transport when signing
    requests (0.1 s of every `taoflow sync` that imports the SDK, a third of the SDK's import
    time; see docs/benchmarks.md) and runs without it: aiohttp is an optional dependency of
    azure-core, imported under `except ImportError`. This process makes no async request, and
    prefect-azure's blocks (for `--credentials`) load without it too. The SDK itself is imported
    only when the sync needs it (an unchanged re-sync lists without it, tasks.storage.quick_list),
    so aiohttp is held back for the whole command, not around one import; afterwards it imports
    normally. A library caller is never touched: this runs only in the CLI command.
    """
    if "aiohttp" in sys.modules:
        yield
        return
    sys.modules["aiohttp"] = None  # how Python marks a package as missing
    try:
        yield
    finally:
        if "aiohttp" in sys.modules and sys.modules["aiohttp"] is None:
            del sys.modules["aiohttp"]


def _warn(text: str) -> None:
    err_console.print(f"warning: {text}", markup=False)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.add_typer(sync_app, name="sync")


@contextmanager
def _progress_bar(label: str) -> Iterator:
    """A rich bar on a terminal; no callback at all otherwise (logs and pipes stay clean)."""
    if not is_terminal():
        yield None
        return
    # Imported here: a piped or scripted sync (and every other command) does not pay for it.
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=err_console, transient=True) as bar:
        files = bar.add_task(label, total=None)

        def update(p: SyncProgress) -> None:
            bar.update(files, total=p.bytes_total, completed=p.bytes_done,
                       description=f"{label} {p.files_done}/{p.files_total} files")

        yield update


def _finish(report: SyncReport, as_json: bool) -> None:
    if as_json:
        print_json(report.to_dict())
    else:
        err_console.print(report.summary(), markup=False)
        if report.ignored_unpublished:
            err_console.print(
                f"ignored unpublished (incomplete) results in: {', '.join(report.ignored_unpublished)}", markup=False
            )


@sync_app.command("down")
def down(
    location: str = typer.Argument(..., help="Local path, az://, abfss://, https://...blob... or azureml:// location."),
    directory: Path = typer.Argument(..., help="Local directory to fill (created if missing)."),
    require_published: bool = typer.Option(
        False, "--require-published", help="Refuse a location that is not a complete, published results folder."
    ),
    credentials: Optional[str] = _CREDENTIALS,
    concurrency: int = _CONCURRENCY,
    as_json: bool = _JSON,
    wait: float = _WAIT,
) -> None:
    """Make DIRECTORY an exact copy of LOCATION, transferring only what changed.

    Symlinks and special files in a local LOCATION are not followed (a warning lists them).
    """
    with _without_aiohttp(), _progress_bar("down") as on_progress:
        report = sync_down(location, directory, access=StorageAccess(credentials=credentials),
                           concurrency=concurrency, require_published=require_published, on_progress=on_progress,
                           notice=_warn, lock_wait=wait)
    _finish(report, as_json)


@sync_app.command("up")
def up(
    directory: Path = typer.Argument(..., help="Local results directory to publish."),
    location: str = typer.Argument(..., help="Target folder: local path, az://, https://...blob... or azureml://."),
    credentials: Optional[str] = _CREDENTIALS,
    concurrency: int = _CONCURRENCY,
    as_json: bool = _JSON,
    wait: float = _WAIT,
) -> None:
    """Publish DIRECTORY at LOCATION; unchanged files are skipped and the completion marker is written last.

    Symlinks and special files in DIRECTORY are not uploaded and never read (a warning lists them).
    """
    with _without_aiohttp(), _progress_bar("up") as on_progress:
        report = sync_up(directory, location, access=StorageAccess(credentials=credentials),
                         concurrency=concurrency, on_progress=on_progress, notice=_warn, lock_wait=wait)
    _finish(report, as_json)
