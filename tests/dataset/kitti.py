"""Builders of real KITTI datasets on disk for the validator's tests and benchmark.

Images are real encoded files (Pillow); one encoding per variant is made and its bytes copied,
so thousands of pairs take a second to write.
"""

from __future__ import annotations

import io
import random
from functools import lru_cache
from pathlib import Path

from PIL import Image

from tasks.spec.facts import SpecFacts

KITTI_LINE = "{cls} 0.00 0 -1.57 {x1:.2f} {y1:.2f} {x2:.2f} {y2:.2f} 1.50 1.60 3.90 -3.00 1.70 20.00 -1.59"


@lru_cache(maxsize=64)
def encoded(fmt: str = "png", size: tuple[int, int] = (1248, 384), mode: str = "RGB") -> bytes:
    """A real image file's bytes: a gradient (so the encoders have data to compress)."""
    w, h = size
    base = Image.linear_gradient("L").resize((w, h))
    img = Image.merge("RGB", (base, base.transpose(Image.Transpose.FLIP_LEFT_RIGHT), base)) if mode != "L" else base
    if mode not in ("RGB", "L"):
        img = img.convert(mode)
    buf = io.BytesIO()
    img.save(buf, format="JPEG" if fmt in ("jpg", "jpeg") else "PNG")
    return buf.getvalue()


def png16(size: tuple[int, int] = (1248, 384)) -> bytes:
    img = Image.new("I;16", size, 1000)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def kitti_line(cls: str = "car", box: tuple[float, float, float, float] = (100, 120, 200, 220)) -> str:
    x1, y1, x2, y2 = box
    return KITTI_LINE.format(cls=cls, x1=x1, y1=y1, x2=x2, y2=y2)


def make_dataset(root: Path, n: int = 3, *, ext: str = "png", size: tuple[int, int] = (1248, 384),
                 classes: tuple[str, ...] = ("car", "pedestrian"), objects: int = 3, seed: int = 0,
                 image_dir: str = "image_2", label_dir: str = "label_2") -> Path:
    """A clean KITTI root with `n` pairs; returns the root."""
    rng = random.Random(seed)
    images, labels = root / image_dir, root / label_dir
    images.mkdir(parents=True, exist_ok=True)
    labels.mkdir(parents=True, exist_ok=True)
    data = encoded(ext, size)
    w, h = size
    for i in range(n):
        stem = f"{i:06d}"
        (images / f"{stem}.{ext}").write_bytes(data)
        lines = []
        for _ in range(objects):
            x1, y1 = rng.uniform(0, w - 60), rng.uniform(0, h - 60)
            box = (x1, y1, x1 + rng.uniform(20, 59), y1 + rng.uniform(20, 59))
            lines.append(kitti_line(rng.choice(classes), box))
        (labels / f"{stem}.txt").write_text("\n".join(lines) + "\n")
    return root


def train_facts(**overrides) -> SpecFacts:
    """Facts of a sound train spec like NVIDIA's 5.5 KITTI tutorial (two classes)."""
    values = dict(
        kind="train", file="spec.txt", output_width=1248, output_height=384, output_channels=3,
        image_extension="png", target_class_mapping={"car": "car", "pedestrian": "pedestrian"},
        mapping_key_lines={"car": 12, "pedestrian": 16},
        cost_function_classes=["car", "pedestrian"], bbox_rasterizer_classes=["car", "pedestrian"],
        postprocessing_classes=["car", "pedestrian"], evaluation_classes=["car", "pedestrian"],
        num_epochs=10, batch_size_per_gpu=1, validation_fold=0, scalar_logging_frequency=1,
        infrequent_logging_frequency=1, visualizer_enabled=True,
    )
    values.update(overrides)
    return SpecFacts(**values)
