"""`taoflow spec ...` through the real entry point: exit codes, messages, atomic output."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from taoflow.cli import main
from tests.spec._specs import FACE_MASK_TRAIN, spec_path, spec_text

BASE = "tao_tutorials_5.5__detectnet_v2_train_resnet18_kitti.txt"


def run(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
        sys.exit(0)
    out = capsys.readouterr()
    return info.value.code or 0, out.out, out.err


def test_check_ok_and_errors(capsys):
    code, out, _ = run(["spec", "check", str(spec_path(BASE))], capsys)
    assert code == 0 and "ok (train spec" in out
    code, _, err = run(["spec", "check", str(spec_path(FACE_MASK_TRAIN))], capsys)
    assert code == 1
    assert f"{FACE_MASK_TRAIN}:55:29: error wrong-type" in err and f"{FACE_MASK_TRAIN}:66:29" in err
    code, _, err = run(["spec", "check", "--kind", "dataset_convert", str(spec_path(BASE))], capsys)
    assert code == 1 and "unknown field" in err


def test_check_json_is_one_document_whatever_the_verdict(capsys):
    code, out, _ = run(["spec", "check", str(spec_path(BASE)), "--json"], capsys)
    clean = json.loads(out)
    assert code == 0 and clean["ok"] is True and clean["kind"] == "train"
    assert all(p["severity"] == "warning" for p in clean["problems"])
    code, out, err = run(["spec", "check", str(spec_path(FACE_MASK_TRAIN)), "--json"], capsys)
    broken = json.loads(out)
    assert code == 1 and broken["ok"] is False and err == ""
    assert {"code": "wrong-type", "line": 55, "column": 29} in [
        {k: p[k] for k in ("code", "line", "column")} for p in broken["problems"]
    ]


def test_usage_errors_exit_2(tmp_path, capsys):
    assert run(["spec", "check", str(tmp_path / "none.txt")], capsys)[0] == 2
    assert run(["spec", "check", "--kind", "inference", str(spec_path(BASE))], capsys)[0] == 2
    src = tmp_path / "s.txt"
    src.write_text(spec_text(BASE))
    code, _, err = run(["spec", "rewrite", str(src), "--map", "nomapping", "-o", str(tmp_path / "o.txt")], capsys)
    assert code == 2 and "expected KEY=VALUE" in err
    code, _, err = run(["spec", "rewrite", str(src), "--epochs", "3", "-o", str(src)], capsys)
    assert code == 2 and "is the input spec itself" in err
    assert src.read_text() == spec_text(BASE)


def test_show_json(capsys):
    code, out, _ = run(["spec", "show", str(spec_path(BASE)), "--json"], capsys)
    facts = json.loads(out)
    assert code == 0 and (facts["output_width"], facts["output_height"], facts["output_channels"]) == (1248, 384, 3)
    assert facts["target_class_mapping"]["van"] == "car" and facts["num_epochs"] == 120


def test_rewrite_writes_atomically_with_diff(tmp_path, capsys):
    out_file = tmp_path / "out.txt"
    out_file.write_text("old content")
    argv = ["spec", "rewrite", str(spec_path(BASE)), "--map", "/workspace/tao-experiments/data=/mnt/data",
            "--epochs", "10", "--set", "training_config.batch_size_per_gpu=8", "-o", str(out_file), "--diff"]  # fmt: skip
    code, out, err = run(argv, capsys)
    assert code == 0
    text = out_file.read_text()
    assert '"/mnt/data/tfrecords/kitti_trainval/*"' in text and "num_epochs: 10\n" in text and "batch_size_per_gpu: 8\n" in text
    assert out.startswith("--- a/") and "+  num_epochs: 10" in out and "wrote" in err
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]  # no temp file left behind
    # an unmatched reference fails before anything is written
    code, _, err = run(["spec", "rewrite", str(spec_path(BASE)), "--map", "/nope=/x", "-o", str(out_file)], capsys)
    assert code == 1 and "matches no path" in err and out_file.read_text() == text


def test_console_script_subprocess(tmp_path):
    env = dict(os.environ)
    proc = subprocess.run(
        [sys.executable, "-m", "taoflow", "spec", "check", str(spec_path(FACE_MASK_TRAIN))],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1 and ":55:29:" in proc.stderr and "Traceback" not in proc.stderr
