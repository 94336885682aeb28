"""Benchmark: dataset validator vs. a full-decode PIL loop (baseline) and a raw 64-byte read (limit);
with --blob, validation in place in Blob Storage vs. downloading first (bench/inplace.py).

Generates a KITTI-size dataset (default 5,000 pairs at 1248x384; half PNG-sized variants, random
labels), then measures, in this one run and on a warm page cache:
  limit     read the first 64 bytes of every image and label file (one process)
  ours      validate_dataset(...) with 2 workers, header probes + every label line
  baseline  open + fully decode every image with Pillow and read its label (on a sample; rate only)
Targets: ours >= 60x baseline and >= 0.25x limit.
With --blob (20,000 photo-like pairs by default, on a private Azurite, direct and +20 ms per request):
in place >= 10x faster than download-then-validate and than AzCopy + validate at +20 ms, bytes read
<= 2 % of the dataset, findings identical to the local validator's on the downloaded copy.

    .venv/bin/python bench/validate.py [--pairs 5000] [--baseline-sample 300]
    .venv/bin/python bench/validate.py --blob [--pairs 20000] [--settings ab] [--delay 0.02]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PIL import Image  # noqa: E402

from tasks.dataset import DatasetValidation, validate_dataset  # noqa: E402
from tests.dataset.kitti import encoded, kitti_line, train_facts  # noqa: E402

SIZES = [(1248, 384), (1242, 375), (1224, 370), (1238, 374)]  # KITTI's raw sizes vary like this
CLASSES = ("car", "pedestrian", "cyclist", "van", "dontcare")


def generate(root: Path, pairs: int, seed: int = 1) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    images, labels = root / "image_2", root / "label_2"
    images.mkdir(parents=True)
    labels.mkdir(parents=True)
    variants = [encoded("png", s) for s in SIZES]
    files = []
    for i in range(pairs):
        stem = f"{i:06d}"
        k = rng.randrange(len(SIZES))
        w, h = SIZES[k]
        (images / f"{stem}.png").write_bytes(variants[k])
        lines = []
        for _ in range(rng.randint(0, 12)):
            x1, y1 = rng.uniform(0, w - 100), rng.uniform(0, h - 100)
            lines.append(kitti_line(rng.choice(CLASSES), (x1, y1, x1 + rng.uniform(5, 99), y1 + rng.uniform(5, 99))))
        (labels / f"{stem}.txt").write_text("\n".join(lines) + ("\n" if lines else ""))
        files.append((str(images / f"{stem}.png"), str(labels / f"{stem}.txt")))
    return files


def raw_read(files: list[tuple[str, str]]) -> None:
    for image, label in files:
        for path in (image, label):
            with open(path, "rb") as fh:
                fh.read(64)


def pil_loop(files: list[tuple[str, str]]) -> None:
    for image, label in files:
        with Image.open(image) as img:
            img.load()
        with open(label, "rb") as fh:
            fh.read()


def rate(fn, files) -> float:
    started = time.perf_counter()
    fn(files)
    return len(files) / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=None, help="pairs (default 5,000; with --blob 20,000)")
    parser.add_argument("--baseline-sample", type=int, default=300)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--blob", action="store_true", help="the blob settings (bench/inplace.py)")
    parser.add_argument("--settings", default="ab", help="with --blob: (a) direct, (b) behind the latency proxy")
    parser.add_argument("--delay", type=float, default=0.02, help="with --blob: seconds added per request in (b)")
    args = parser.parse_args()
    if args.blob:
        from bench.inplace import run

        return run(args.pairs or 20_000, args.delay, args.settings)
    args.pairs = args.pairs or 5000
    facts = train_facts(target_class_mapping={"car": "car", "van": "car", "pedestrian": "pedestrian",
                                              "cyclist": "cyclist"},
                        cost_function_classes=["car", "cyclist", "pedestrian"],
                        bbox_rasterizer_classes=["car", "cyclist", "pedestrian"],
                        postprocessing_classes=["car", "cyclist", "pedestrian"],
                        evaluation_classes=["car", "cyclist", "pedestrian"], batch_size_per_gpu=4)
    with tempfile.TemporaryDirectory(prefix="taoflow-bench-validate-") as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        files = generate(root, args.pairs)
        print(f"generated {args.pairs} pairs at 1248x384-ish in {time.perf_counter() - started:.1f} s "
              f"({os.cpu_count()} cores)")
        raw_read(files)  # warm the page cache so every method reads from memory
        limit = max(rate(raw_read, files) for _ in range(3))
        best, report = 0.0, None
        for _ in range(3):
            started = time.perf_counter()
            report = validate_dataset(DatasetValidation(facts, root, workers=args.workers))
            best = max(best, args.pairs / (time.perf_counter() - started))
        sample = files[: args.baseline_sample]
        baseline = rate(pil_loop, sample)
    assert report is not None and report.totals["pairs"] == args.pairs, report.summary()
    print(f"validator report: {report.summary()}")
    print(f"{'method':<34}{'pairs/s':>12}")
    print(f"{'raw 64-byte read (limit)':<34}{limit:>12,.0f}")
    print(f"{'taoflow validate (ours)':<34}{best:>12,.0f}")
    print(f"{'PIL full decode (baseline, n=' + str(len(sample)) + ')':<34}{baseline:>12,.0f}")
    vs_base, vs_limit = best / baseline, best / limit
    print(f"ours / baseline = {vs_base:.1f}x (target >= 60x): {'PASS' if vs_base >= 60 else 'FAIL'}")
    print(f"ours / limit    = {vs_limit:.2f}x (target >= 0.25x): {'PASS' if vs_limit >= 0.25 else 'FAIL'}")
    return 0 if vs_base >= 60 and vs_limit >= 0.25 else 1


if __name__ == "__main__":
    sys.exit(main())
