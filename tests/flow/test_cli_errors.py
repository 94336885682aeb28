"""`taoflow run` on the error paths a user meets (issue 16, item 2): the pre-flight findings of
docs/preflight.md (spec and dataset), the missing base model, the engine without the NVIDIA
runtime, a missing Prefect block, unreachable storage. Each ends in one message saying what,
where and how to fix, a non-zero exit, and no Python traceback anywhere in the output."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys

import pytest
import yaml

from tests.flow.conftest import TRAIN_SPEC, request_fields

pytestmark = pytest.mark.services


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # released on close: nothing listens there


def spec_variant(tmp_path, old: str, new: str) -> str:
    text = TRAIN_SPEC.read_text()
    assert old in text, old
    spec = tmp_path / "spec.txt"
    spec.write_text(text.replace(old, new, 1))
    return str(spec)


def data_variant(tmp_path, demo_data, change) -> str:
    root = tmp_path / "copy"
    shutil.copytree(demo_data, root)
    change(root / "data" / "shapes")
    return str(root)


def sixteen_fields(data):
    label = sorted((data / "label_2").iterdir())[0]
    label.write_text(label.read_text().splitlines()[0] + " 0.97\n")  # a score column


def unlabelled(data):
    sorted((data / "label_2").iterdir())[0].unlink()


def no_model(root):
    shutil.rmtree(root.parent.parent / "pretrained" / "resnet18")
    (root.parent.parent / "pretrained" / "resnet18").mkdir()


CASES = {
    # case: (fields to change, what the message must say)
    "spec wrong-type": (lambda t, d: {"spec": spec_variant(t, "output_image_width: 960", 'output_image_width: "960"')},
                        "wrong-type"),
    "spec invalid-value": (lambda t, d: {"spec": spec_variant(t, "output_image_width: 960", "output_image_width: 950")},
                           "multiple of 16"),
    "spec uppercase mapping key": (lambda t, d: {"spec": spec_variant(t, 'value: "ellipse"', 'value: "Ellipse"')},
                                   "class"),
    "label.score-column": (lambda t, d: {"data_root": data_variant(t, d, sixteen_fields)}, "label.score-column"),
    "pair.image-without-label": (lambda t, d: {"data_root": data_variant(t, d, unlabelled)}, "image-without-label"),
    "base-model-missing": (lambda t, d: {"data_root": data_variant(t, d, no_model)}, "base-model-missing"),
    "no NVIDIA runtime": (lambda t, d: {"docker_gpus": "all"}, "NVIDIA Container Toolkit"),
    "missing credentials block": (lambda t, d: {"storage_credentials": "no-such-block",
                                                "output": "az://models/out"}, "no-such-block"),
    "missing key block": (lambda t, d: {"key_block": "no-such-secret"}, "no-such-secret"),
    "unreachable storage": (lambda t, d: {"output": f"http://127.0.0.1:{closed_port()}/devstoreaccount1/models"},
                            "cannot reach the storage endpoint"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_run_ends_in_one_clean_message(case, prefect_api, demo_data, engine_env, tmp_path, monkeypatch):
    image = engine_env()
    change, expected = CASES[case]
    changes = change(tmp_path, demo_data)
    data_root = changes.pop("data_root", str(demo_data))
    tfrecords = tmp_path / "tfrecords"
    tfrecords.mkdir()
    fields = request_fields(data_root, tfrecords=str(tfrecords), output=str(tmp_path / "out"), image=image)
    fields.update(changes)
    if case == "unreachable storage":
        endpoint = fields["output"].rsplit("/", 1)[0]
        monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING",
                           f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;BlobEndpoint={endpoint};")
    config = tmp_path / "job.yaml"
    config.write_text(yaml.safe_dump(fields))
    result = subprocess.run([sys.executable, "-m", "taoflow", "run", str(config)], capture_output=True, text=True,
                            timeout=600, env={**os.environ, "PREFECT_API_URL": prefect_api})
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert "Traceback" not in output, output[-5000:]
    error = result.stderr[result.stderr.rindex("error: "):]
    assert expected in error, error
    assert "how to fix" in error or "hint:" in error, error
