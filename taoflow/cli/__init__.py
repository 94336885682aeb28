"""The `taoflow` command: a thin skin over the plain functions in `tasks/` and the flows.

Commands that need no orchestration (spec, validate, plan, sync, models) call the plain functions
and answer in seconds; only `run` and `demo` start Prefect.
"""

from __future__ import annotations

import sys

import typer

from taoflow import __version__
from taoflow.cli import events, models, report, run, spec, sync, validate
from taoflow.cli.output import print_error
from tasks.errors import TaoflowError

app = typer.Typer(
    name="taoflow",
    help="Retrain NVIDIA TAO DetectNet_v2 detectors from local or Azure data, orchestrated by Prefect 3.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"taoflow {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Retrain NVIDIA TAO DetectNet_v2 detectors from local or Azure data, orchestrated by Prefect 3."""


for _module in (spec, validate, sync, run, events, models, report):
    _module.register(app)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry: user mistakes become one readable message and a non-zero exit."""
    try:
        app(args=argv, prog_name="taoflow")
    except TaoflowError as exc:
        print_error(exc)
        sys.exit(exc.cli_exit_status)
    except KeyboardInterrupt:
        print_error("interrupted")
        sys.exit(130)
