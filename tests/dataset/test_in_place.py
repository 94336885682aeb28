"""Validating a dataset where it lies in Blob Storage (real Azurite): the same findings as from the
same files on disk, whatever form the location takes, for a fraction of the bytes."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tasks.dataset import DatasetValidation, validate_dataset
from tasks.dataset.labels import WHOLE_FILE_BYTES
from tasks.storage import StorageAccess
from tests.dataset.kitti import encoded, kitti_line, make_dataset, train_facts
from tests.dataset.test_cli import SPEC

pytestmark = pytest.mark.services

FACTS = dict(image_extension="jpg")


def exif_jpeg(exif_bytes: int) -> bytes:
    """A camera-like JPEG: a maker note of `exif_bytes` before the frame header."""
    exif = Image.Exif()
    exif[0x010F] = "TestCam"
    exif.get_ifd(0x8769)[0x927C] = bytes(range(256)) * (exif_bytes // 256)
    buf = io.BytesIO()
    Image.linear_gradient("L").resize((1248, 384)).convert("RGB").save(buf, "JPEG", exif=exif.tobytes())
    return buf.getvalue()


def planted(root: Path) -> Path:
    """12 pairs with the faults the issue names, and a few the blob reader must get right too."""
    make_dataset(root, 12, ext="jpg")
    images, labels = root / "image_2", root / "label_2"
    jpeg = encoded("jpg", (1248, 384))
    (images / "000001.jpg").write_bytes(encoded("jpg", (1242, 375)))  # wrong size
    (images / "000002.jpg").write_bytes(encoded("png", (1248, 384)))  # a PNG named .jpg
    (images / "000003.jpg").write_bytes(jpeg[:100])  # cut inside its header: no frame header
    (images / "000004.jpg").write_bytes(jpeg[: len(jpeg) - 300])  # cut short: no end marker
    (images / "000005.jpg").write_bytes(exif_jpeg(30_000))  # frame header beyond the first range
    (labels / "000006.txt").write_text(
        kitti_line() + "\n" + "car 0 0 0 1 2 3\n" + kitti_line().replace(" 100.00 ", " nan ", 1) + "\n"
        + kitti_line() + " 0.97\n")  # bad KITTI lines: 7 fields, a NaN corner, a score column
    (labels / "000007.txt").write_text(kitti_line("truck") + "\n")  # a class the spec does not map
    (labels / "000099.txt").write_text(kitti_line() + "\n")  # a label without an image
    (labels / "000008.txt").unlink()  # an image without a label
    # larger than any real label file: read in bounded ranges, a line too long among its lines
    (labels / "000009.txt").write_text((kitti_line() + "\n") * (WHOLE_FILE_BYTES // 90)
                                       + "x" * 70_000 + "\n" + kitti_line("truck") + "\n")
    (images / "000010.jpeg").write_bytes(jpeg)  # another extension: not listed by TAO
    (images / "notes.txt").write_text("not an image")
    (root / "label_2" / "000011.txt").write_bytes(b"car \xff\xfe 0 0\n")  # not UTF-8
    return root


def upload(container, local: Path, prefix: str) -> None:
    for path in sorted(p for p in local.rglob("*") if p.is_file()):
        container.upload_blob(f"{prefix}/{path.relative_to(local).as_posix()}", path.read_bytes())


def comparable(data: dict, root: str) -> dict:
    """A report's JSON with the root replaced, without what differs by nature (time, reads)."""
    return _replace({k: v for k, v in data.items() if k not in ("seconds", "summary", "reads")}, root, "<root>")


def _replace(value, old: str, new: str):
    if isinstance(value, str):
        return value.replace(old, new)
    if isinstance(value, dict):
        return {_replace(k, old, new): _replace(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace(v, old, new) for v in value]
    return value


@pytest.fixture
def dataset(tmp_path, azurite, blob_container):
    local = planted(tmp_path / "kitti")
    upload(blob_container, local, "datasets/kitti")
    return local


def test_findings_from_blobs_equal_findings_from_disk(dataset, azurite, blob_container, monkeypatch):
    facts = train_facts(**FACTS)
    on_disk = validate_dataset(DatasetValidation(facts, dataset))
    expected = comparable(on_disk.to_dict(), str(dataset))
    assert {"image.size-mismatch", "image.format-mismatch", "image.unreadable", "image.truncated",
            "label.field-count", "label.not-finite", "label.score-column", "class.unmapped",
            "pair.label-without-image", "pair.image-without-label", "label.line-too-long",
            "image.extension-mismatch", "layout.stray-file"} <= set(on_disk.counts), on_disk.counts
    assert on_disk.reads == {}

    name = blob_container.container_name
    path_style = f"{azurite.blob_endpoint}/{name}/datasets/kitti"
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)
    datastores = StorageAccess(datastores={"kittistore": (azurite.connection_string, name)})
    for location, access in ((path_style, None), (f"az://{name}/datasets/kitti", None),
                             ("azureml://datastores/kittistore/paths/datasets/kitti", datastores)):
        in_place = validate_dataset(DatasetValidation(facts, location, access=access))
        assert in_place.data_dir == location
        assert comparable(in_place.to_dict(), location) == expected, location
        images = on_disk.totals["images"]
        # a head range per image, a tail range (none where the head held the whole file), one more
        # for the EXIF image, one per label file and the big label's ranges
        assert images < in_place.reads["requests"] <= 2 * images + on_disk.totals["labels"] + 1 + 2
        size = sum(p.stat().st_size for p in dataset.rglob("*") if p.is_file())
        big = (dataset / "label_2" / "000009.txt").stat().st_size
        assert in_place.reads["bytes"] < (size - big) * 0.2 + big


def test_a_missing_root_is_the_same_finding(azurite, blob_container, tmp_path):
    location = f"{azurite.blob_endpoint}/{blob_container.container_name}/nothing/here"
    facts = train_facts(**FACTS)
    in_place = validate_dataset(DatasetValidation(facts, location,
                                                  access=StorageAccess(connection_string=azurite.connection_string)))
    on_disk = validate_dataset(DatasetValidation(facts, tmp_path / "nothing"))
    assert comparable(in_place.to_dict(), location) == comparable(on_disk.to_dict(), str(tmp_path / "nothing"))
    assert "layout.data-dir-missing" in in_place.counts and in_place.reads == {"requests": 0, "bytes": 0}


def test_cli_validates_a_blob_location_in_place(dataset, azurite, blob_container, tmp_path):
    spec = tmp_path / "spec.txt"
    spec.write_text(SPEC.replace("WIDTH", "1248").replace('image_extension: "png"', 'image_extension: "jpg"'))
    location = f"az://{blob_container.container_name}/datasets/kitti"
    env = {**os.environ, "AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string}

    def validate(data: str, *extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "taoflow", "validate", "--spec", str(spec), "--data", data,
                               *extra], capture_output=True, text=True, timeout=120, env=env)

    done = validate(location)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert f"{location}/label_2/000006.txt:2: error label.field-count" in done.stdout
    assert "read in place: " in done.stdout and " ranged reads, " in done.stdout
    as_json = json.loads(validate(location, "--json").stdout)
    local = json.loads(validate(str(dataset), "--json").stdout)
    assert as_json["reads"]["requests"] > 0 and "reads" not in local
    assert comparable(as_json, location) == comparable(local, str(dataset))
