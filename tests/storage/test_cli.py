"""`taoflow sync down/up` end to end against Azurite, credentials from the environment."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from taoflow.cli import app
from tests.storage.helpers import blob_tree, location_of, nested_tree, read_tree, upload_tree, write_tree

pytestmark = pytest.mark.services


def test_sync_up_then_down_through_the_cli(azurite_env, blob_container, workdir):
    tree = nested_tree(files=12)
    write_tree(workdir / "results", tree)
    target = f"az://{blob_container.container_name}/models/app/run1"
    runner = CliRunner()
    up = runner.invoke(app, ["sync", "up", str(workdir / "results"), target, "--json"])
    assert up.exit_code == 0, up.output
    assert json.loads(up.stdout)["files_transferred"] == len(tree)

    down = runner.invoke(app, ["sync", "down", target, str(workdir / "copy"), "--require-published", "--json"])
    assert down.exit_code == 0, down.output
    assert read_tree(workdir / "copy") == tree
    again = runner.invoke(app, ["sync", "down", target, str(workdir / "copy"), "--json"])
    assert json.loads(again.stdout)["bytes_transferred"] == 0


def test_cli_errors_are_one_message_with_an_exit_code(azurite_env, blob_container, workdir):
    missing = location_of(azurite_env, blob_container).replace(blob_container.container_name, "no-such-container")
    run = subprocess.run(
        [sys.executable, "-m", "taoflow", "sync", "down", missing, str(workdir / "x")],
        capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 1
    assert "does not exist" in run.stderr and "Traceback" not in run.stderr
    bad = subprocess.run([sys.executable, "-m", "taoflow", "sync", "down", "s3://bucket/x", str(workdir)],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "accepted forms" in bad.stderr


def test_the_progress_bar_is_drawn_on_a_terminal(azurite_env, blob_container, workdir):
    """Run the CLI under a pseudo-terminal so rich sees a TTY, and look for the bar's text."""
    import os
    import pty

    blob_container.upload_blob("d/a.bin", b"x" * 200_000)
    location = location_of(azurite_env, blob_container, "d")
    pid, fd = pty.fork()
    if pid == 0:  # the child: the CLI with the pty as stdout/stderr
        os.execvpe(sys.executable, [sys.executable, "-m", "taoflow", "sync", "down", location, str(workdir / "t")],
                   {**os.environ, "COLUMNS": "120", "TERM": "xterm"})
    output = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    _, status = os.waitpid(pid, 0)
    text = output.decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 0, text
    assert "down 1/1 files" in text or "down 0/1 files" in text
    assert blob_tree(blob_container, "d") == read_tree(workdir / "t")


def test_a_fresh_cli_process_syncs_with_a_credentials_block(prefect_api, azurite, blob_container, workdir):
    """`taoflow sync` imports the blob SDK with aiohttp held back (taoflow/cli/sync.py); in a fresh
    process, prefect-azure (which `--credentials` loads afterwards) and the sync must still work."""
    import os

    from prefect_azure import AzureBlobStorageCredentials

    AzureBlobStorageCredentials(connection_string=azurite.connection_string).save("cli-fresh", overwrite=True)
    tree = nested_tree(seed=4, files=8)
    upload_tree(blob_container, "d", tree)
    env = {k: v for k, v in os.environ.items() if k != "AZURE_STORAGE_CONNECTION_STRING"}
    run = subprocess.run(
        [sys.executable, "-m", "taoflow", "sync", "down", location_of(azurite, blob_container, "d"),
         str(workdir / "t"), "--credentials", "cli-fresh", "--json"],
        capture_output=True, text=True, timeout=120, env={**env, "PREFECT_API_URL": prefect_api},
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["files_transferred"] == len(tree)
    assert read_tree(workdir / "t") == tree
