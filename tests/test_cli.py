"""The `taoflow` console script: help, version, and readable errors instead of tracebacks."""

from __future__ import annotations

import subprocess
import sys

import typer.main

from taoflow import __version__
from taoflow.cli import COMMAND_MODULES, build_app


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "taoflow", *args], capture_output=True, text=True, timeout=120
    )


def test_help_lists_the_commands():
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("spec", "validate", "sync", "run", "plan", "demo", "events"):
        assert command in result.stdout, f"{command!r} missing from taoflow --help"


def _commands(app) -> set[str]:
    return set(typer.main.get_command(app).commands)


def test_each_command_line_loads_the_module_that_serves_it():
    """`main` registers only the module a command line names; the table it reads is complete."""
    assert _commands(build_app()) == set(COMMAND_MODULES)
    for command in COMMAND_MODULES:
        assert command in _commands(build_app(command)), command
    assert _commands(build_app("sync")) == {"sync"}


def test_a_sync_does_not_import_the_job_layer():
    probe = ("import sys; from taoflow.cli import main\ntry: main(['sync', '--help'])\nexcept SystemExit: pass\n"
             "print(sorted(m for m in sys.modules if m.startswith(('tasks.job', 'flows', 'prefect'))))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_version():
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"taoflow {__version__}"
    assert __version__ != "0.0.0+source", "the package is installed, so the version comes from its metadata"


def test_unknown_command_is_a_usage_error_without_traceback():
    result = run_cli("no-such-command")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
