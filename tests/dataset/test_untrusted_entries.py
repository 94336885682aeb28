"""A dataset is untrusted input: links and special files are findings, never read; a huge label line is a
finding, not an out-of-memory kill. Everything on real files; the validator runs in a child process
so a blocking open of a FIFO would show as a time-out instead of hanging the suite.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.dataset.kitti import encoded, kitti_line, make_dataset

REPO = Path(__file__).resolve().parents[2]

_RUN = """
import json, resource, sys
from tasks.dataset import DatasetValidation, validate_dataset
from tests.dataset.kitti import train_facts
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
report = validate_dataset(DatasetValidation(train_facts(), sys.argv[1], workers=1))
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"report": report.to_dict(), "peak_growth_kib": after - before}))
"""


def _validate_in_child(root: Path, timeout: int = 300) -> dict:
    proc = subprocess.run([sys.executable, "-c", _RUN, str(root)], capture_output=True, text=True, cwd=REPO,
                          timeout=timeout, check=False)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def _examples(report: dict, code: str) -> list[str]:
    return sorted(os.path.basename(e["file"]) for c in report["checks"] if c["code"] == code for e in c["examples"])


def test_links_fifos_and_dangling_links_are_findings_never_read(tmp_path):
    root = make_dataset(tmp_path / "data", 3)
    images, labels = root / "image_2", root / "label_2"
    outside = tmp_path / "outside"
    outside.mkdir()
    # What a link could expose: files whose content would show in the report if they were read.
    (outside / "secret.png").write_bytes(encoded("png", (77, 33)))
    (outside / "secret.txt").write_text(kitti_line("leaked_secret_class") + "\n")
    os.mkfifo(outside / "blocks_on_open")  # opening it to read, without a writer, blocks forever
    (images / "000003.png").symlink_to(outside / "secret.png")
    (labels / "000003.txt").symlink_to(outside / "secret.txt")
    (images / "000004.png").symlink_to(outside / "blocks_on_open")
    (labels / "000004.txt").write_text(kitti_line() + "\n")
    os.mkfifo(images / "000005.png")
    (labels / "000005.txt").symlink_to(outside / "blocks_on_open")
    (images / "000006.png").symlink_to(tmp_path / "gone" / "000006.png")  # dangling
    (labels / "000006.txt").write_text(kitti_line() + "\n")

    report = _validate_in_child(root)["report"]

    assert _examples(report, "layout.symlink") == ["000003.png", "000003.txt", "000004.png", "000005.txt",
                                                  "000006.png"]
    assert _examples(report, "layout.special-file") == ["000005.png"]
    assert not report["ok"] and {c["code"]: c["severity"] for c in report["checks"]} == {
        "layout.symlink": "error", "layout.special-file": "error"}  # no second finding for the same entries
    # Nothing behind a link was read: its class and its image size would be in the report.
    assert "leaked_secret_class" not in report["classes"] and "77x33" not in report["image_sizes"]
    assert report["totals"]["images"] == 3 and report["totals"]["labels"] == 3


def test_linked_image_folder_is_a_finding(tmp_path):
    elsewhere = make_dataset(tmp_path / "elsewhere", 2, size=(77, 33))
    root = make_dataset(tmp_path / "data", 2)
    (root / "image_2").rename(root / "image_2.real")
    (root / "image_2").symlink_to(elsewhere / "image_2")
    report = _validate_in_child(root)["report"]
    assert _examples(report, "layout.symlink") == ["image_2"]
    assert "77x33" not in report["image_sizes"] and report["totals"]["images"] == 0


def test_a_200_mb_single_line_label_costs_kilobytes(tmp_path):
    root = make_dataset(tmp_path / "data", 3)
    big = root / "label_2" / "000001.txt"
    chunk = b"1.0 " * (1 << 18)  # 1 MiB
    with open(big, "wb") as fh:
        fh.write(b"car ")
        for _ in range(200):
            fh.write(chunk)
        fh.write(b"\n" + kitti_line().encode() + b"\n")
    assert big.stat().st_size > 200 * 1024 * 1024

    result = _validate_in_child(root, timeout=600)

    report = result["report"]
    (check,) = [c for c in report["checks"] if c["code"] == "label.line-too-long"]
    assert check["severity"] == "error" and check["examples"][0]["line"] == 1
    assert report["totals"]["objects"] == 3 * 3 - 3 + 1  # the line after it is still read
    # Peak memory of the whole validation grows by far less than the file (5.1 GB before the fix).
    assert result["peak_growth_kib"] < 64 * 1024, result["peak_growth_kib"]
