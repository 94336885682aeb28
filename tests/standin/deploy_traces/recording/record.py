"""Record how TAO Deploy's `detectnet_v2 gen_trt_engine` ends, by running NVIDIA's own code.

NVIDIA's wrapper (`nvidia_tao_deploy/cv/detectnet_v2/entrypoint/detectnet_v2.py` ->
`cv/common/entrypoint/entrypoint_proto.py: launch_job`), which starts the script
(`cv/detectnet_v2/scripts/gen_trt_engine.py`, decorated by `cv/common/decorators.py: monitor_status`,
logging through `cv/common/logging/status_logging.py`) as a subprocess, run unmodified from the
PyPI wheel nvidia-tao-deploy 7.3.0 on a CPU. TensorRT and pycuda are replaced by the stand-ins in
stubs/ (what they do is written there); modules imported but never called on this path are empty
(stubs/IMPORT_ONLY.txt). hydra-core 1.3.2 and marshmallow 3.26.1 are the real ones the wheel pins:
without them `monitor_status` would catch every exception as a config error.

Each scenario runs in a fresh folder that stands for `/workspace/tao-experiments` (NVIDIA's notebook
layout, `tao_tutorials` detectnet_v2.ipynb): the recorded files have that prefix put back, and
NVIDIA's package path and the interpreter put back as a TAO Deploy container shows them.

    python record.py --deploy DIR_WITH_nvidia_tao_deploy --python VENV/bin/python --out ../gen_trt_engine \
        [--scenario NAME ...] [--suffix _py310]
"""

from __future__ import annotations

import argparse
import os
import shutil
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
STUBS = HERE / "stubs"
SPECS = HERE.parents[3] / "../shared/reference/specs"
REFERENCE_SPEC = (SPECS / "tao_tutorials_5.5__detectnet_v2_retrain_resnet18_kitti.txt").resolve()
WORKSPACE = "/workspace/tao-experiments"
FINAL = "detectnet_v2/experiment_dir_final"
#: Where a TAO Deploy container keeps the package (for the interpreter's version) and its interpreter.
CONTAINER_PACKAGES = "/usr/local/lib/python{}/dist-packages"
CONTAINER_PYTHON = "/usr/bin/python3"

BASE = ["gen_trt_engine", "-m", f"{WORKSPACE}/{FINAL}/resnet18_detector.onnx",
        "-e", f"{WORKSPACE}/specs/detectnet_v2_retrain_resnet18_kitti.txt", "--results_dir", f"{WORKSPACE}/{FINAL}"]
ENGINE = ["--engine_file", f"{WORKSPACE}/{FINAL}/resnet18_detector.trt"]
INT8 = ["--data_type", "int8", "--batches", "10", "--batch_size", "4", "--max_batch_size", "64"]
CACHE = ["--cal_cache_file", f"{WORKSPACE}/{FINAL}/calibration.bin"]
CAL_DIR = ["--cal_image_dir", f"{WORKSPACE}/data/calibration"]

#: name: (argv after `detectnet_v2`, calibration images in data/calibration, env, runs)
SCENARIOS = {
    "success_fp16": (BASE + ["--data_type", "fp16", "--max_batch_size", "64"] + ENGINE, 0, {}, 1),
    # NVIDIA's notebook command (INT8 from the spec's training images), without --verbose.
    "success_int8": (BASE + INT8 + ENGINE + CACHE, 0, {}, 1),
    "fp16_without_engine_file": (BASE + ["--data_type", "fp16"], 0, {}, 1),
    "fp32_without_engine_file": (BASE, 0, {}, 1),
    "int8_without_cal_cache_file": (BASE + INT8 + ENGINE, 0, {}, 1),
    "cal_images_fewer_than_a_batch": (BASE + INT8 + ENGINE + CACHE + CAL_DIR, 3, {}, 1),
    "cal_images_fewer_than_asked": (BASE + INT8 + ENGINE + CACHE + CAL_DIR, 8, {}, 1),
    # 40 images, enough for 10 batches of 4: the tensorfile path finds none of them all the same.
    "cal_data_file_finds_no_images": (BASE + INT8 + ENGINE + CACHE + CAL_DIR
                                      + ["--cal_data_file", f"{WORKSPACE}/{FINAL}/calibration.tensorfile"], 40, {}, 1),
    "no_cal_images": (BASE + INT8 + ENGINE + CACHE + CAL_DIR, 0, {}, 1),
    "onnx_parse_error": (BASE + ["--data_type", "fp16"] + ENGINE, 0, {"TRT_STUB_PARSE_FAIL": "1"}, 1),
    "build_failed": (BASE + ["--data_type", "fp16"] + ENGINE, 0, {"TRT_STUB_BUILD_FAIL": "1"}, 1),
    "wrong_model_suffix": (["gen_trt_engine", "-m", f"{WORKSPACE}/detectnet_v2/experiment_dir_retrain/weights/"
                            "resnet18_detector_pruned.hdf5"] + BASE[3:] + ["--data_type", "fp16"] + ENGINE, 0, {}, 1),
    "missing_spec": (BASE[:3] + ["-e", f"{WORKSPACE}/specs/missing.txt"] + BASE[5:] + ["--data_type", "fp16"] + ENGINE,
                     0, {}, 1),
    "rerun": (BASE + ["--data_type", "fp16", "--max_batch_size", "64"] + ENGINE, 0, {}, 2),
}


def png(width: int, height: int, shade: int) -> bytes:
    """A small RGB PNG (stdlib only)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\0" + bytes([shade, 255 - shade, 128]) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def lay_out(root: Path, calibration_images: int) -> None:
    """The notebook's folders: the exported ONNX, the retrain spec, the training images (40, the
    notebook's 10 batches of 4), a calibration folder with `calibration_images` images."""
    top = root / WORKSPACE.lstrip("/")
    (top / FINAL).mkdir(parents=True)
    (top / FINAL / "resnet18_detector.onnx").write_bytes(b"\x08\x07stand-in ONNX of the retrained model\n")
    (top / "specs").mkdir()
    (top / "specs/detectnet_v2_retrain_resnet18_kitti.txt").write_text(
        REFERENCE_SPEC.read_text().replace(WORKSPACE, str(top)))
    for folder, count in (("data/training/image_2", 40), ("data/calibration", calibration_images)):
        (top / folder).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            (top / folder / f"{i:06d}.png").write_bytes(png(62, 19, i * 5 % 256))


def snapshot(folder: Path) -> dict[str, int]:
    return {str(p): p.stat().st_size for p in sorted(folder.rglob("*")) if p.is_file()}


def record(name: str, deploy: Path, python: Path, out: Path, folder_name: str) -> None:
    argv, images, env_extra, runs = SCENARIOS[name]
    version = subprocess.run([str(python), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    packages = CONTAINER_PACKAGES.format(version)
    with tempfile.TemporaryDirectory(prefix="tao-deploy-trace-") as tmp:
        root = Path(tmp)
        lay_out(root, images)
        host = [a.replace(WORKSPACE, str(root) + WORKSPACE) for a in argv]
        results = root / WORKSPACE.lstrip("/") / FINAL
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "TRT_STUB"))}
        env |= {"PYTHONPATH": f"{STUBS}:{deploy}", "PATH": f"{python.parent}:{env.get('PATH', '')}",
                "PYTHONDONTWRITEBYTECODE": "1", "TMPDIR": tmp} | env_extra
        wrapper = [str(python), "-c", "import sys; sys.argv[0] = 'detectnet_v2'; from nvidia_tao_deploy.cv.detectnet_v2"
                   ".entrypoint.detectnet_v2 import main; main()"]
        for _ in range(runs):
            before = snapshot(results)
            done = subprocess.run(wrapper + host, env=env, cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        after = snapshot(results)

        def clean(text: str) -> str:
            text = text.replace(str(deploy), packages).replace(str(root), "")
            return text.replace(f"{python.parent}/python3", CONTAINER_PYTHON).replace(str(python), CONTAINER_PYTHON)

        folder = out / folder_name
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        (folder / "command.txt").write_text("detectnet_v2 " + " ".join(argv) + "\n")
        (folder / "console.txt").write_text(clean(done.stdout.decode("utf-8", "replace")))
        (folder / "exit_code").write_text(f"{done.returncode}\n")
        status = results / "status.json"
        (folder / "status.json").write_text(clean(status.read_text()) if status.exists() else "")
        lines = []
        for path, size in after.items():
            mark = "\tnew" if path not in before else "\tmodified" if before[path] != size or path.endswith(
                "status.json") else ""
            lines.append(f"{clean(path)}\t{size}{mark}\n")
        (folder / "files.txt").write_text("".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deploy", type=Path, required=True, help="the unzipped wheel")
    parser.add_argument("--python", type=Path, required=True, help="with hydra-core, marshmallow")
    parser.add_argument("--out", type=Path, default=HERE.parent / "gen_trt_engine")
    parser.add_argument("--scenario", action="append", choices=sorted(SCENARIOS))
    parser.add_argument("--suffix", default="", help="appended to each scenario's folder name (e.g. _py310)")
    args = parser.parse_args()
    for name in args.scenario or SCENARIOS:
        record(name, args.deploy.resolve(), args.python.absolute(), args.out, name + args.suffix)
        print("recorded", name + args.suffix)


if __name__ == "__main__":
    main()
