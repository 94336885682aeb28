"""`taoflow validate` end to end: the real console script, a real spec file, real dataset files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from taoflow.cli.validate import _progress
from tests.dataset.check_cases import c_nan
from tests.dataset.kitti import kitti_line, make_dataset

SPEC = """\
dataset_config {
  data_sources {
    tfrecords_path: "/workspace/data/tfrecords/kitti-fold-*"
    image_directory_path: "/workspace/data/training"
  }
  image_extension: "png"
  target_class_mapping { key: "car" value: "car" }
  target_class_mapping { key: "pedestrian" value: "pedestrian" }
  validation_fold: 0
}
augmentation_config {
  preprocessing {
    output_image_width: WIDTH
    output_image_height: 384
    output_image_channel: 3
    min_bbox_width: 1.0
    min_bbox_height: 1.0
  }
}
training_config {
  batch_size_per_gpu: 1
  num_epochs: 10
  visualizer { enabled: true scalar_logging_frequency: 1 infrequent_logging_frequency: 1 }
}
cost_function_config {
  target_classes { name: "car" }
  target_classes { name: "pedestrian" }
}
"""


def run(tmp_path: Path, *args: str, width: int = 1248) -> subprocess.CompletedProcess:
    spec = tmp_path / "spec.txt"
    spec.write_text(SPEC.replace("WIDTH", str(width)))
    return subprocess.run([sys.executable, "-m", "taoflow", "validate", "--spec", str(spec), *args],
                          capture_output=True, text=True, timeout=60)


def test_clean_dataset_exits_0_with_a_summary(tmp_path):
    root = make_dataset(tmp_path / "data", 3)
    done = run(tmp_path, "--data", str(root))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "dataset passed: 3 images, 3 label files, 9 objects; 0 errors, 0 warnings" in done.stdout
    assert "\x1b[" not in done.stdout + done.stderr  # plain output when not on a terminal


def test_errors_exit_1_with_file_and_line(tmp_path):
    root = make_dataset(tmp_path / "data", 3)
    c_nan(root)
    done = run(tmp_path, "--data", str(root))
    assert done.returncode == 1
    assert f"{root}/label_2/000001.txt:1: error label.not-finite: field 5 is 'nan'" in done.stdout
    assert "hint: write finite numbers" in done.stdout


def test_spec_width_500_fails(tmp_path):
    root = make_dataset(tmp_path / "data", 3)
    done = run(tmp_path, "--data", str(root), "--json", width=500)
    report = json.loads(done.stdout)
    assert done.returncode == 1 and report["ok"] is False
    codes = {c["code"]: c for c in report["checks"]}
    assert codes["spec.size-not-multiple-of-16"]["examples"][0]["file"].endswith("spec.txt")


def test_warnings_pass_unless_strict(tmp_path):
    root = make_dataset(tmp_path / "data", 3, image_dir="pics", label_dir="gt")
    (root / "gt" / "000001.txt").write_text(kitti_line("truck") + "\n")
    relaxed = run(tmp_path, "--data", str(root), "--images", "pics", "--labels", "gt")
    strict = run(tmp_path, "--data", str(root), "--images", "pics", "--labels", "gt", "--strict")
    assert relaxed.returncode == 0 and "warning class.unmapped" in relaxed.stdout
    assert strict.returncode == 1 and "error class.unmapped" in strict.stdout


def test_missing_spec_is_a_usage_error(tmp_path):
    done = subprocess.run([sys.executable, "-m", "taoflow", "validate", "--spec", str(tmp_path / "nope.txt"),
                           "--data", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "cannot read the spec" in done.stderr and "Traceback" not in done.stderr


def test_progress_bar_follows_the_callback():
    with _progress(True) as update:
        update(0, 10)
        update(10, 10)
    with _progress(False) as update:
        assert update is None
