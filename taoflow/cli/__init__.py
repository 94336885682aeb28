"""The `taoflow` command: a thin skin over the plain functions in `tasks/` and the flows.

Commands that need no orchestration (spec, validate, plan, sync, models) call the plain functions
and answer in seconds; only `run` and `demo` start Prefect.
"""

from __future__ import annotations

import importlib
import sys

import typer

from taoflow.cli.output import print_error
from tasks.errors import TaoflowError

#: The module that registers each top-level command. `main` imports only the one its command line
#: names: the job layer behind `run`/`plan` costs ~0.15 s to import, which `taoflow sync` (run by
#: cron jobs, often with nothing to do) should not pay.
COMMAND_MODULES = {
    "spec": "spec", "validate": "validate", "sync": "sync", "run": "run", "plan": "run", "demo": "run",
    "events": "events", "models": "models", "report": "report",
}


def _version_callback(value: bool) -> None:
    if value:
        from taoflow import __version__

        typer.echo(f"taoflow {__version__}")
        raise typer.Exit()


def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Retrain NVIDIA TAO DetectNet_v2 detectors from local or Azure data, orchestrated by Prefect 3."""


def build_app(command: str | None = None) -> typer.Typer:
    """The root app with `command`'s module registered, or every module when `command` is not one.

    >>> sorted(c.name for c in build_app("validate").registered_commands)
    ['validate']
    """
    app = typer.Typer(
        name="taoflow",
        help="Retrain NVIDIA TAO DetectNet_v2 detectors from local or Azure data, orchestrated by Prefect 3.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
    )
    app.callback()(_root)
    wanted = [COMMAND_MODULES[command]] if command in COMMAND_MODULES else COMMAND_MODULES.values()
    for name in dict.fromkeys(wanted):
        importlib.import_module(f"taoflow.cli.{name}").register(app)
    return app


def __getattr__(name: str) -> typer.Typer:
    # `from taoflow.cli import app` (tests, `typer taoflow.cli`) gets every command.
    if name == "app":
        return build_app()
    raise AttributeError(name)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry: user mistakes become one readable message and a non-zero exit."""
    args = sys.argv[1:] if argv is None else argv
    command = next((a for a in args if not a.startswith("-")), None)
    try:
        build_app(command)(args=args, prog_name="taoflow")
    except TaoflowError as exc:
        print_error(exc)
        sys.exit(exc.cli_exit_status)
    except KeyboardInterrupt:
        print_error("interrupted")
        sys.exit(130)
