"""`taoflow demo`, `taoflow plan` and `taoflow run` as a user runs them (subprocesses, real services)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.services


def taoflow(*args: str, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "taoflow", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """One `taoflow demo` on this GPU-less machine, with its own ephemeral Prefect and home."""
    root = tmp_path_factory.mktemp("demo-cli")
    env = {"TAOFLOW_HOME": str(root / "home"), "PREFECT_HOME": str(root / "prefect")}
    env.pop("PREFECT_API_URL", None)
    result = taoflow("demo", "--dir", str(root / "demo"), env=env)
    return root, env, result


def test_demo_without_gpu_ends_with_the_launch_plan(demo_run):
    root, _, result = demo_run
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Launch plan" in result.stdout
    assert "detectnet_v2 train -e /workspace/taoflow/specs/experiment_spec.txt" in result.stdout
    assert "status: planned" in result.stdout
    assert "note: dataset_convert would run first" in result.stdout
    # What the README promises: the spec diff, and a clean stop that says what is missing and how to get it.
    assert "Spec rewrite" in result.stdout and "+  num_epochs: 3" in result.stdout
    assert "Stopped before training. To train on this machine:" in result.stderr and "NVIDIA" in result.stderr
    # Everything that is missing here, not only the first: the runtime, the image and the model.
    missing = [line for line in result.stderr.splitlines() if line.startswith("  - ")]
    assert len(missing) == 3, result.stderr
    assert "NVIDIA runtime" in missing[0] and "TAO image" in missing[1] and "pretrained" in missing[2]
    assert "nvidia/tao/pretrained_detectnet_v2:resnet18" in result.stderr
    # git's a/ b/ prefixes on an absolute path: one slash.
    assert "--- a/" in result.stdout and "--- a//" not in result.stdout and "+++ b//" not in result.stdout
    # The demo explains the missing base model itself: no second, "error"-worded finding about it.
    assert "base-model-missing" not in result.stdout + result.stderr and "error" not in result.stdout
    assert "Traceback" not in result.stderr
    assert (root / "demo" / "demo.yaml").is_file()
    assert len(list((root / "demo" / "data" / "shapes" / "image_2").glob("*.png"))) == 64


def test_plan_on_the_demo_config(demo_run):
    root, env, _ = demo_run
    result = taoflow("plan", str(root / "demo" / "demo.yaml"), "--json", env=env, timeout=60)
    # The demo has no pretrained model: the plan is printed, and it exits non-zero saying training would stop.
    assert result.returncode == 1, result.stderr
    assert "training would stop before the container starts" in result.stderr and "Traceback" not in result.stderr
    plan = json.loads(result.stdout)
    assert plan["validation"]["totals"]["images"] == 64
    assert plan["dataset_convert"] == "the TFRecords location is empty"
    assert plan["launch"]["argv"][:2] == ["detectnet_v2", "train"]
    assert [p["code"] for p in plan["would_stop"]] == ["base-model-missing"]
    assert "+  num_epochs: 3" in plan["spec_diff"]
    # Structured objects, not Python reprs.
    epochs = next(c for c in plan["spec_changes"] if c["field"] == "training_config.num_epochs")
    assert epochs["new"] == "3" and isinstance(epochs["line"], int)


def test_plan_and_run_with_a_base_model(demo_run, tmp_path):
    root, env, _ = demo_run
    model = root / "demo" / "pretrained" / "resnet18" / "resnet18.hdf5"
    model.write_bytes(b"\x89HDF\r\n\x1a\n stand-in pretrained weights")
    try:
        planned = taoflow("plan", str(root / "demo" / "demo.yaml"), env=env, timeout=60)
        assert planned.returncode == 0, planned.stderr
        assert "Launch plan" in planned.stdout and "warning" not in planned.stderr
        dry = taoflow("run", str(root / "demo" / "demo.yaml"), "--dry-run", "--json", env=env, timeout=300)
        assert dry.returncode == 0, dry.stderr[-3000:]
        result = json.loads(dry.stdout)
        assert result["status"] == "planned" and result["would_stop"] == [] and "num_epochs" in result["spec_diff"]
    finally:
        model.unlink()


def test_plan_reports_a_spec_error_with_its_line(demo_run, tmp_path):
    root, env, _ = demo_run
    spec = tmp_path / "bad.txt"
    text = (root / "demo" / "demo.yaml").read_text()
    original = next(line.split(": ", 1)[1] for line in text.splitlines() if line.startswith("spec:"))
    spec.write_text(open(original).read().replace("output_image_width: 960", "output_image_width: 950"))
    result = taoflow("plan", str(root / "demo" / "demo.yaml"), "--set", f"spec={spec}", env=env, timeout=60)
    assert result.returncode == 1
    assert f"{spec}:30" in result.stderr and "16" in result.stderr
    assert "Traceback" not in result.stderr


def test_run_reports_a_config_error_without_traceback(tmp_path):
    config = tmp_path / "job.yaml"
    config.write_text("model_app_name: x\nnum_epochs: 0\n")
    result = taoflow("run", str(config), timeout=60)
    assert result.returncode == 2
    assert f"{config}:2" in result.stderr and "num_epochs" in result.stderr
    assert "Traceback" not in result.stderr
