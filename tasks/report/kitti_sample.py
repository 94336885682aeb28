"""A bounded, link-safe sample of a KITTI folder: which frames, their boxes, their image sizes.

The pictures must cost the same on 60 images and on 6 million: the image folder is listed by
name only (no stat, no read), a fixed-size sample is kept while listing, and only the sampled
files are opened. The sample is chosen by a hash of each name, so it does not depend on the
order the file system lists them in and a re-run draws the same frames.

A dataset folder is input we do not trust: links are not followed, FIFOs and devices are not
opened, files are read up to a bound, and Pillow never decodes an image beyond a pixel bound.
"""

from __future__ import annotations

import hashlib
import heapq
import io
import math
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from tasks.dataset.kitti_folders import IMAGE_DIR_CANDIDATES, IMAGE_EXTENSIONS, LABEL_DIR_CANDIDATES
from tasks.files import open_regular, read_regular

MAX_LABEL_BYTES = 1 << 20
MAX_IMAGE_BYTES = 64 << 20
#: Larger images are listed but not decoded (a decompression bomb costs nothing here).
MAX_PIXELS = 80_000_000


@dataclass(frozen=True)
class Box:
    """One KITTI object as TAO reads it: the class lower-cased, the box in image pixels."""

    name: str
    x1: float
    y1: float
    x2: float
    y2: float

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1


@dataclass(frozen=True)
class Frame:
    image: Path
    label: Path | None


@dataclass
class FrameSample:
    """The frames drawn from a dataset folder, and how many there were to draw from."""

    root: Path
    image_dir: Path | None
    label_dir: Path | None
    total: int = 0
    frames: list[Frame] = field(default_factory=list)


def _real_dir(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def _pick(root: Path, explicit: str | None, candidates: tuple[str, ...]) -> Path | None:
    for name in ((explicit,) if explicit else ()) + candidates:
        if name and "/" not in name and name not in (".", "..") and _real_dir(root / name):
            return root / name
    return None


def _rank(seed: int, name: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{seed}:{name}".encode("utf-8", "surrogateescape"),
                                          digest_size=8).digest(), "big")


def sample_frames(data_dir: Path, *, count: int, seed: int = 0, image_dir_name: str | None = None,
                  label_dir_name: str | None = None) -> FrameSample:
    """Up to `count` frames of a KITTI folder (`image_2`/`label_2` or `images`/`labels`), sorted by name.

    >>> sample_frames(Path("/nonexistent"), count=3).total
    0
    """
    root = Path(data_dir)
    image_dir = _pick(root, image_dir_name, IMAGE_DIR_CANDIDATES)
    label_dir = _pick(root, label_dir_name, LABEL_DIR_CANDIDATES)
    sample = FrameSample(root, image_dir, label_dir)
    if image_dir is None or count <= 0:
        return sample
    kept: list[tuple[int, str]] = []  # a max-heap (negated ranks) of the `count` lowest ranks
    with os.scandir(image_dir) as entries:
        for entry in entries:
            name = entry.name
            if "." not in name or name.rsplit(".", 1)[1].lower() not in IMAGE_EXTENSIONS:
                continue
            if not entry.is_file(follow_symlinks=False):
                continue
            sample.total += 1
            rank = _rank(seed, name)
            if len(kept) < count:
                heapq.heappush(kept, (-rank, name))
            elif rank < -kept[0][0]:
                heapq.heapreplace(kept, (-rank, name))
    for _, name in sorted(kept, key=lambda item: item[1]):
        label = label_dir / (name.rsplit(".", 1)[0] + ".txt") if label_dir else None
        sample.frames.append(Frame(image_dir / name, label))
    return sample


def read_boxes(label: Path | None) -> list[Box]:
    """The objects of a KITTI label file, read as TAO reads them; lines TAO would refuse are skipped.

    >>> read_boxes(None)
    []
    """
    raw = read_regular(label, MAX_LABEL_BYTES) if label is not None else None
    if raw is None:
        return []
    boxes = []
    for line in raw.decode("utf-8", "replace").splitlines():
        fields = line.split()
        if len(fields) not in (15, 16):
            continue
        try:
            x1, y1, x2, y2 = (float(v) for v in fields[4:8])
        except ValueError:
            continue
        if all(map(math.isfinite, (x1, y1, x2, y2))) and int(x1) < int(x2) and int(y1) < int(y2):
            boxes.append(Box(fields[0].lower(), x1, y1, x2, y2))
    return boxes


def open_image(path: Path):
    """A lazily decoded Pillow image of a regular, bounded file, or None (unreadable, too large).

    Only the header is read here; the caller decodes (a JPEG with `draft` at the size it needs).
    """
    from PIL import Image

    raw = read_regular(path, MAX_IMAGE_BYTES)
    if raw is None:
        return None
    try:
        image = Image.open(io.BytesIO(raw))
    except Exception:  # Pillow raises many types for data it cannot read; all mean "no picture"
        return None
    width, height = image.size
    if width * height > MAX_PIXELS or width <= 0 or height <= 0:
        return None
    return image


def image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from the image's header alone, or None."""
    from PIL import Image

    try:
        fd, size = open_regular(str(path))
    except OSError:  # missing, a link or a special file: no size
        return None
    with os.fdopen(fd, "rb") as handle:
        if size > MAX_IMAGE_BYTES:
            return None
        try:
            with Image.open(handle) as image:
                return image.size
        except Exception:  # unreadable header: no size
            return None
