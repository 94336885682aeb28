"""A photo-like KITTI dataset for the in-place validation benchmark, built once and cached.

Each image is a JPEG of a KITTI raw size cut from one of a few noise-and-gradient textures
(blurred by different amounts, so the encoder meets detail like a street scene's) with a few
boxes drawn on it, saved at quality 82-95: 40-250 KB, like camera frames at this size. One in
five carries an EXIF block of 6-40 KB (a maker note, as cameras write), so its frame header lies
beyond the first range the validator reads. A handful of planted faults (a truncated JPEG, a PNG
named .jpg, bad label lines, a label without an image) give the reports something to agree on.
Deterministic (seeded): the same files on every machine, so the cache can be rebuilt at will.
"""

from __future__ import annotations

import io
import json
import random
import shutil
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

SIZES = [(1248, 384), (1242, 375), (1224, 370), (1238, 374)]
CLASSES = ("car", "pedestrian", "cyclist", "van", "dontcare")
LINE = "{cls} 0.00 0 -1.57 {x1:.2f} {y1:.2f} {x2:.2f} {y2:.2f} 1.50 1.60 3.90 -3.00 1.70 20.00 -1.59"
BLURS = (0.4, 0.6, 0.8, 1.0, 1.3, 1.8)
#: Bumped when the generator changes, so an old cache is rebuilt.
VERSION = 2


def _textures(seed: int) -> list[Image.Image]:
    rng = random.Random(seed)
    out = []
    for blur in BLURS:
        w, h = 1600, 640
        channels = [Image.effect_noise((w, h), rng.uniform(40, 70)).filter(ImageFilter.GaussianBlur(blur))
                    for _ in range(3)]
        ramp = Image.linear_gradient("L").resize((w, h))
        out.append(Image.merge("RGB", [Image.blend(c, ramp, 0.45) for c in channels]))
    return out


def _exif(rng: random.Random) -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "BenchCam"
    exif[0x0110] = "Model 7"
    exif.get_ifd(0x8769)[0x927C] = rng.randbytes(rng.randint(6_000, 40_000))  # MakerNote
    return exif.tobytes()


def _photo(textures: list[Image.Image], rng: random.Random, size: tuple[int, int]) -> tuple[bytes, list[str]]:
    w, h = size
    base = rng.choice(textures)
    x, y = rng.randrange(base.width - w), rng.randrange(base.height - h)
    img = base.crop((x, y, x + w, y + h))
    draw = ImageDraw.Draw(img)
    lines = []
    for _ in range(rng.randint(0, 10)):
        x1, y1 = rng.uniform(0, w - 120), rng.uniform(0, h - 100)
        x2, y2 = x1 + rng.uniform(8, 119), y1 + rng.uniform(8, 99)
        draw.rectangle((x1, y1, x2, y2), outline=tuple(rng.randrange(256) for _ in range(3)), width=2)
        lines.append(LINE.format(cls=rng.choice(CLASSES), x1=x1, y1=y1, x2=x2, y2=y2))
    buf = io.BytesIO()
    extra = {"exif": _exif(rng)} if rng.random() < 0.2 else {}
    img.save(buf, "JPEG", quality=rng.randint(82, 95), **extra)
    return buf.getvalue(), lines


def _plant_faults(images: Path, labels: Path) -> list[str]:
    """A few faults the validator must report the same from disk and from blob storage."""
    done = []
    data = (images / "000010.jpg").read_bytes()
    (images / "000010.jpg").write_bytes(data[: len(data) // 2])  # cut short: no end marker
    done.append("000010.jpg truncated")
    buf = io.BytesIO()
    Image.new("RGB", (1248, 384), (90, 90, 90)).save(buf, "PNG")
    (images / "000020.jpg").write_bytes(buf.getvalue())  # a PNG named .jpg
    done.append("000020.jpg is a PNG")
    with open(labels / "000030.txt", "a") as fh:
        fh.write("car 0.00 0 -1.57 10 10 nan 50 1.5 1.6 3.9 -3 1.7 20 -1.59\ntruck 0 0 0 1 2 3\n")
    done.append("000030.txt: a NaN corner and a 7-field line")
    (images / "000040.jpg").unlink()  # its label is left without an image
    done.append("label 000040.txt without an image")
    return done


def build(root: Path, pairs: int, seed: int = 1) -> dict:
    """The dataset under `root` (KITTI layout image_2/label_2), built unless already there whole."""
    stamp = root / "dataset.json"
    want = {"version": VERSION, "pairs": pairs, "seed": seed}
    if stamp.exists():
        info = json.loads(stamp.read_text())
        if all(info.get(k) == v for k, v in want.items()):
            return info
    shutil.rmtree(root, ignore_errors=True)
    images, labels = root / "image_2", root / "label_2"
    images.mkdir(parents=True)
    labels.mkdir(parents=True)
    rng = random.Random(seed)
    textures = _textures(seed)
    total = 0
    for i in range(pairs):
        data, lines = _photo(textures, rng, rng.choice(SIZES))
        (images / f"{i:06d}.jpg").write_bytes(data)
        (labels / f"{i:06d}.txt").write_text("".join(line + "\n" for line in lines))
    faults = _plant_faults(images, labels) if pairs > 40 else []
    total = sum(p.stat().st_size for folder in (images, labels) for p in folder.iterdir())
    info = {**want, "bytes": total, "faults": faults}
    stamp.write_text(json.dumps(info))
    return info


if __name__ == "__main__":
    import sys

    print(build(Path(sys.argv[1]), int(sys.argv[2])))
