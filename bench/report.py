"""Benchmark: the report's dataset pictures cost the same on any dataset size (they sample).

Generates KITTI folders of growing size (hard links of a few 1248x384 PNGs, one label per image,
0-12 boxes), then measures in this one run, on a warm page cache:
  ours      dataset_summary (sample of 1,000 frames) + contact_sheet (12 frames) + drawing the charts
  baseline  what an unsampled pass costs: read every label file and every image header (Pillow)
Target: ours grows < 2x over the 10x larger dataset (the default sizes). Only the listing of names
grows with the dataset; the reads and the drawing are bounded by the sample.

    .venv/bin/python bench/report.py [--sizes 2000,20000]
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

from tasks.report import contact_sheet, dataset_pictures, dataset_summary  # noqa: E402
from tests.dataset.kitti import encoded, kitti_line  # noqa: E402

CLASSES = ("car", "pedestrian", "cyclist", "van")


def generate(root: Path, count: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    images, labels = root / "image_2", root / "label_2"
    images.mkdir(parents=True)
    labels.mkdir(parents=True)
    sources = []
    for k in range(4):
        path = root / f"source{k}.png"
        path.write_bytes(encoded("png", (1248, 384)))
        sources.append(path)
    for i in range(count):
        os.link(sources[i % 4], images / f"{i:07d}.png")
        lines = []
        for _ in range(rng.randint(0, 12)):
            x1, y1 = rng.uniform(0, 1148), rng.uniform(0, 284)
            lines.append(kitti_line(rng.choice(CLASSES), (x1, y1, x1 + rng.uniform(5, 99), y1 + rng.uniform(5, 99))))
        (labels / f"{i:07d}.txt").write_text("\n".join(lines) + ("\n" if lines else ""))


def ours(root: Path) -> float:
    started = time.perf_counter()
    summary = dataset_summary(root, {c: c for c in CLASSES})
    dataset_pictures(summary)
    contact_sheet(root, count=12)
    return time.perf_counter() - started


def baseline(root: Path) -> float:
    started = time.perf_counter()
    for name in os.listdir(root / "image_2"):
        with Image.open(root / "image_2" / name) as image:
            image.size  # noqa: B018 - the header is what is read
        (root / "label_2" / (name[:-4] + ".txt")).read_text()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="2000,20000")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for count in (int(s) for s in args.sizes.split(",")):
            root = Path(tmp) / str(count)
            generate(root, count)
            ours(root), baseline(root)  # warm the page cache
            rows.append((count, min(ours(root) for _ in range(3)), min(baseline(root) for _ in range(3))))
    print("| images | ours (summary + charts + contact sheet) | baseline (every label + header) |")
    print("|---:|---:|---:|")
    for count, mine, base in rows:
        print(f"| {count:,} | {mine * 1000:.0f} ms | {base * 1000:.0f} ms |")
    growth = rows[-1][1] / rows[0][1]
    print(f"\nover a {rows[-1][0] // rows[0][0]}x larger dataset ours grows {growth:.2f}x (target < 2x: "
          f"{'met' if growth < 2 else 'MISSED'}), the baseline {rows[-1][2] / rows[0][2]:.1f}x; at {rows[-1][0]:,} "
          f"images ours costs {rows[-1][1] / rows[-1][2]:.2f}x the baseline")


if __name__ == "__main__":
    main()
