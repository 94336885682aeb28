"""Where a KITTI dataset's images and labels are, and which image goes with which label.

TAO reads `<root>/<image_dir_name>/<stem>.<ext>` with `<root>/<label_dir_name>/<stem>.txt`
(defaults image_2 / label_2); many exports use images / labels instead, so both are tried.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from tasks.dataset.tally import Tally

IMAGE_DIR_CANDIDATES = ("image_2", "images")
LABEL_DIR_CANDIDATES = ("label_2", "labels")
IMAGE_EXTENSIONS = frozenset(("png", "jpg", "jpeg"))


@dataclass
class Layout:
    root: str
    image_dir: str | None = None
    label_dir: str | None = None
    #: (image file name, whether `<stem>.txt` exists), sorted by stem
    items: list[tuple[str, bool]] = field(default_factory=list)


def _is_image_name(name: str) -> bool:
    return "." in name and name.rsplit(".", 1)[1].lower() in IMAGE_EXTENSIONS


def _pick_dir(root: str, explicit: str | None, candidates: tuple[str, ...]) -> str | None:
    names = (explicit,) if explicit else tuple(dict.fromkeys(c for c in candidates if c))
    for name in names:
        path = os.path.join(root, name)
        if os.path.isdir(path):
            return path
    return None


def _list_files(path: str) -> list[str]:
    with os.scandir(path) as entries:
        return [e.name for e in entries if e.is_file()]


def find_layout(root: str, tally: Tally, *, images: str | None = None, labels: str | None = None,
                image_dir_name: str | None = None, label_dir_name: str | None = None) -> Layout:
    """Locate the image and label folders under `root`, pair their files and report layout problems."""
    layout = Layout(root)
    if not os.path.isdir(root):
        tally.add("layout.data-dir-missing", "the data directory does not exist", file=root)
        return layout
    layout.image_dir = _pick_dir(root, images, (image_dir_name or "",) + IMAGE_DIR_CANDIDATES)
    layout.label_dir = _pick_dir(root, labels, (label_dir_name or "",) + LABEL_DIR_CANDIDATES)
    if layout.image_dir is None:
        tried = images or ", ".join(dict.fromkeys(filter(None, (image_dir_name, *IMAGE_DIR_CANDIDATES))))
        if any(_is_image_name(n) for n in _list_files(root)):
            tally.add("train.image-dir-not-root", f"images lie directly in the data root, not in an image folder "
                      f"({tried}); TAO reads <root>/<image_dir_name>/<stem>", file=root)
        else:
            tally.add("layout.image-dir-missing", f"no image folder ({tried}) under the data root", file=root)
    if layout.label_dir is None:
        tried = labels or ", ".join(dict.fromkeys(filter(None, (label_dir_name, *LABEL_DIR_CANDIDATES))))
        tally.add("layout.label-dir-missing", f"no label folder ({tried}) under the data root", file=root)
    if layout.image_dir is None:
        return layout
    label_stems = set()
    if layout.label_dir is not None:
        label_stems = {n[:-4] for n in _list_files(layout.label_dir) if n.endswith(".txt")}
    layout.items = pair_images(layout.image_dir, _list_files(layout.image_dir), label_stems, layout.label_dir, tally)
    if not layout.items:
        tally.add("layout.no-images", "the image folder holds no .png, .jpg or .jpeg file", file=layout.image_dir)
    return layout


def pair_images(image_dir: str, names: list[str], label_stems: set[str], label_dir: str | None,
                tally: Tally) -> list[tuple[str, bool]]:
    """Pair image names with label stems; `label_stems` is consumed (what is left had no image)."""
    images = []
    for name in names:
        if _is_image_name(name):
            images.append(name)
        else:
            tally.add("layout.stray-file", "not a .png, .jpg or .jpeg file", file=os.path.join(image_dir, name))
    images.sort(key=lambda n: n.rsplit(".", 1))
    items: list[tuple[str, bool]] = []
    prev_stem, prev_labelled = None, False
    for name in images:
        stem = name.rsplit(".", 1)[0]
        if stem == prev_stem:
            tally.add("pair.duplicate-frame", f"frame {stem!r} exists as {items[-1][0]} and {name}",
                      file=os.path.join(image_dir, name))
            labelled = prev_labelled
        else:
            labelled = stem in label_stems
            label_stems.discard(stem)
        if not labelled:
            where = f"{label_dir}/{stem}.txt" if label_dir else f"{stem}.txt"
            tally.add("pair.image-without-label", f"no label file {where}", file=os.path.join(image_dir, name))
        items.append((name, labelled))
        prev_stem, prev_labelled = stem, labelled
    for stem in sorted(label_stems):
        tally.add("pair.label-without-image", f"no image {stem}.<ext> in {image_dir}",
                  file=os.path.join(label_dir or "", stem + ".txt"))
    return items
