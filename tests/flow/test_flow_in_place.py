"""The flow validates blob training data where it lies, before staging: a bad dataset in Azurite
fails the run at pre-flight with no image read beyond its header ranges, and nothing staged.
Every request Azurite serves passes a recording proxy (tests/storage/cut_proxy.py): its log is
what Azurite was asked for, so it is the count of what was read."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from urllib.parse import unquote

import pytest

from flows.train import train_detectnet_v2
from tasks.dataset.blob_reader import HEAD_RANGE
from tasks.dataset.images import JPEG_TAIL_BYTES
from tasks.errors import DatasetError
from tests.flow.conftest import TRAIN_SPEC, request_fields
from tests.flow.test_flow_azure import blob_request, task_runs
from tests.flow.test_flow_local import artifacts_of
from tests.storage.cut_proxy import CutProxy

pytestmark = pytest.mark.services


def upload(container, local, prefix: str) -> dict[str, int]:
    sizes = {}
    for path in sorted(p for p in local.rglob("*") if p.is_file()):
        name = f"{prefix}/{path.relative_to(local).as_posix()}"
        container.upload_blob(name, path.read_bytes())
        sizes[name] = path.stat().st_size
    return sizes


def test_bad_blob_dataset_fails_in_place_before_any_image_is_downloaded(
        prefect_api, engine_env, azurite, blob_container, demo_data, tmp_path, monkeypatch):
    image = engine_env()
    sizes = upload(blob_container, demo_data / "data", "data")
    upload(blob_container, demo_data / "pretrained", "pretrained")
    blob_container.upload_blob("specs/train.txt", TRAIN_SPEC.read_bytes())
    label = "data/shapes/label_2/000003.txt"
    # A NaN box corner: TAO's dataset_convert crashes on int() of it (facts §6).
    text = blob_container.download_blob(label).readall().decode()
    blob_container.upload_blob(label, text + "Truck 0.00 0 0.00 nan 10 50 50 0 0 0 0 0 0 0\n", overwrite=True)

    proxy = CutProxy(azurite.port)
    try:
        endpoint = f"http://127.0.0.1:{proxy.port}/devstoreaccount1"
        monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING",
                           azurite.connection_string.replace(azurite.blob_endpoint, endpoint))
        state = train_detectnet_v2(blob_request(f"{endpoint}/{blob_container.container_name}", image),
                                   return_state=True)
    finally:
        proxy.close()

    assert state.is_failed()
    with pytest.raises(DatasetError) as info:
        state.result()
    assert "000003.txt" in info.value.render() and "000003.txt" in state.message
    names = {tr.name for tr in task_runs(state.state_details.flow_run_id)}
    assert any(n.startswith("validate-in-place") for n in names), names
    assert not any(n.startswith(("stage-training_data", "stage-base_model", "validate-dataset")) for n in names), names
    report = artifacts_of(state.state_details.flow_run_id)["dataset-validation"].data.replace("\\", "")
    assert "label.not-finite" in report and "000003.txt" in report  # (markdown escapes removed)

    images = {name: size for name, size in sizes.items() if "/image_2/" in name}
    read: dict[str, list[tuple[int, int]]] = {}
    for line, ranged in proxy.seen:
        method, url = line.split(" ")[:2]
        path = unquote(url.split("?")[0])
        name = path.split(f"/{blob_container.container_name}/", 1)[-1]
        if name in images:
            assert method == "GET" and ranged is not None, f"{name} was read whole: {line}"
            start, end = map(int, re.fullmatch(r"bytes=(\d+)-(\d+)", ranged).groups())
            read.setdefault(name, []).append((start, end))
    assert set(read) == set(images), "every image's header was read in place"
    for name, ranges in read.items():
        size = images[name]
        head, *tails = sorted(ranges)
        assert head == (0, HEAD_RANGE - 1), (name, ranges)
        assert all(start >= size - JPEG_TAIL_BYTES for start, _ in tails), (name, ranges)
        served = sum(end - start + 1 for start, end in ranges)
        assert served <= HEAD_RANGE + JPEG_TAIL_BYTES < size, (name, ranges, size)
    assert not list((tmp_path / "home" / "inputs").glob("*/image_2/*")), "an image was staged"


def test_plan_stops_on_a_bad_blob_dataset_before_staging_it(azurite, blob_container, demo_data, tmp_path):
    """`taoflow plan` runs the same sequence: in place first, so the bad dataset is never staged."""
    upload(blob_container, demo_data / "data", "data")
    blob_container.upload_blob("specs/train.txt", TRAIN_SPEC.read_bytes())
    blob_container.upload_blob("data/shapes/label_2/000005.txt", b"car 0 0 0 1 2 3\n", overwrite=True)
    base = f"{azurite.blob_endpoint}/{blob_container.container_name}"
    fields = request_fields(base, tfrecords=f"{base}/tfrecords/shapes", output=f"{base}/models", image="unused")
    fields["spec"] = f"{base}/specs/train.txt"
    config = tmp_path / "job.yaml"
    config.write_text(json.dumps(fields))  # JSON is YAML
    home = tmp_path / "home"
    env = {**os.environ, "TAOFLOW_HOME": str(home), "AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string}
    done = subprocess.run([sys.executable, "-m", "taoflow", "plan", str(config)], capture_output=True, text=True,
                          timeout=120, env=env)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "data/shapes/label_2/000005.txt:1" in done.stderr and "label.field-count" in done.stderr
    assert "Traceback" not in done.stderr
    staged = [p for p in home.rglob("*") if p.is_file() and p.suffix in (".png", ".txt") and "inputs" in p.parts]
    assert [p.name for p in staged] == ["train.txt"], "only the spec was staged"
