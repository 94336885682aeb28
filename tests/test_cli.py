"""The `taoflow` console script: help, version, and readable errors instead of tracebacks."""

from __future__ import annotations

import subprocess
import sys

from taoflow import __version__


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "taoflow", *args], capture_output=True, text=True, timeout=120
    )


def test_help_lists_the_commands():
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("spec", "validate", "sync", "run", "plan", "demo", "events"):
        assert command in result.stdout, f"{command!r} missing from taoflow --help"


def test_version():
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"taoflow {__version__}"
    assert __version__ != "0.0.0+source", "the package is installed, so the version comes from its metadata"


def test_unknown_command_is_a_usage_error_without_traceback():
    result = run_cli("no-such-command")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
