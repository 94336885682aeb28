"""Progress a person can watch (issue 16, item 8): `taoflow run` as a user runs it, against the
session's Prefect API, the stand-in TAO on dockerd, and data in Azurite and on disk.

On a terminal (a real pseudo-terminal here) a live display shows staging (files, bytes) and
training (epochs of all, loss, ETA, last mAP), with Prefect's console lines down to warnings;
piped, the same progress comes as plain lines next to Prefect's log.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys

import pytest
import yaml

from tests.flow.conftest import TRAIN_SPEC, request_fields

pytestmark = pytest.mark.services


def write_config(tmp_path, data_root, image: str) -> str:
    fields = request_fields(data_root, tfrecords=f"{data_root}/tfrecords/shapes" if "://" in str(data_root)
                            else str(tmp_path / "tfrecords"), output=str(tmp_path / "out"), image=image)
    if "://" in str(data_root):
        fields["spec"] = f"{data_root}/specs/train.txt"
    else:
        fields["spec"] = str(TRAIN_SPEC)
        (tmp_path / "tfrecords").mkdir()
    config = tmp_path / "job.yaml"
    config.write_text(yaml.safe_dump(fields))
    return str(config)


def test_piped_output_has_plain_progress_lines(prefect_api, demo_data, engine_env, tmp_path):
    image = engine_env()
    config = write_config(tmp_path, demo_data, image)
    result = subprocess.run([sys.executable, "-m", "taoflow", "run", config], capture_output=True, text=True,
                            timeout=600, env={**os.environ, "PREFECT_API_URL": prefect_api})
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stderr.splitlines()
    training = [line for line in lines if line.startswith("training: ")]
    assert training and training[-1].startswith("training: 3 of 3 epochs") and training[-1].endswith("(complete)")
    assert any("last mAP" in line for line in training)
    assert any("Beginning flow run" in line for line in lines)  # Prefect's log stays as it is


def test_a_terminal_gets_a_live_display(prefect_api, azurite_env, blob_dataset, engine_env, tmp_path):  # noqa: F811
    image = engine_env()
    config = write_config(tmp_path, blob_dataset, image)
    primary, secondary = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "taoflow", "run", config], stdin=secondary, stdout=secondary,
                               stderr=secondary, env={**os.environ, "PREFECT_API_URL": prefect_api,
                                                      "COLUMNS": "160", "TERM": "xterm"})
    os.close(secondary)
    screen = b""
    while True:
        ready, _, _ = select.select([primary], [], [], 600)
        if not ready:
            process.kill()
            break
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # the terminal closed: the command ended
            break
        if not chunk:
            break
        screen += chunk
    assert process.wait(timeout=60) == 0, screen.decode(errors="replace")[-3000:]
    text = screen.decode(errors="replace")
    assert "stage training_data (" in text and "files)" in text  # staging from Azurite, files and bytes
    assert "train: 3 of 3 epochs" in text and "last mAP" in text
    assert "━" in text  # the bar itself
    assert "Beginning flow run" not in text  # Prefect's INFO lines give way to the display
    assert "status: trained" in text
