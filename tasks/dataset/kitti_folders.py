"""Where a KITTI dataset's images and labels are, and which image TAO pairs with which label.

TAO reads `<root>/<image_dir_name>/<stem>.<ext>` with `<root>/<label_dir_name>/<stem>.txt`
(defaults image_2 / label_2); many exports use images / labels instead, so both are tried.
dataset_convert lists only the files whose name ends with the spec's extension (case-sensitive):
those are the frames TAO converts, checks and trains on; other images are ignored (a warning).
Entries are listed without following links; links and special files are findings, never read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from tasks.dataset.readers import DatasetReader
from tasks.dataset.tally import Tally
from tasks.files import DIR, FILE

IMAGE_DIR_CANDIDATES = ("image_2", "images")
LABEL_DIR_CANDIDATES = ("label_2", "labels")
IMAGE_EXTENSIONS = frozenset(("png", "jpg", "jpeg"))


@dataclass
class Layout:
    root: str
    image_dir: str | None = None
    label_dir: str | None = None
    #: (image file name, whether a regular `<stem>.txt` exists), sorted by stem: the frames TAO lists
    items: list[tuple[str, bool]] = field(default_factory=list)


def _is_image_name(name: str, extension: str) -> bool:
    ext = name.rsplit(".", 1)[1] if "." in name else ""
    return ext.lower() in IMAGE_EXTENSIONS or (bool(extension) and ext == extension)


def _pick_dir(reader: DatasetReader, root: str, explicit: str | None, candidates: tuple[str, ...],
              tally: Tally) -> str | None:
    names = (explicit,) if explicit else tuple(dict.fromkeys(c for c in candidates if c))
    for name in names:
        path = os.path.join(root, name)
        kind = reader.kind(path)
        if kind == DIR:
            return path
        if kind is not None and kind != FILE:
            tally.not_followed(path, kind, "the folder " + name)
    return None


def _regular_files(reader: DatasetReader, path: str, tally: Tally, unreadable: set[str]) -> list[str]:
    """Names of the regular files in `path`; links and special files are reported (their stems added
    to `unreadable`), not listed."""
    names = []
    for name, kind in reader.scan(path):
        if kind == FILE:
            names.append(name)
        elif kind != DIR:
            tally.not_followed(os.path.join(path, name), kind, "this entry")
            unreadable.add(name.rsplit(".", 1)[0])
    return names


def find_layout(reader: DatasetReader, tally: Tally, *, images: str | None = None, labels: str | None = None,
                image_dir_name: str | None = None, label_dir_name: str | None = None,
                extension: str = "png") -> Layout:
    """Locate the image and label folders under the reader's root, pair their files and report layout
    problems.

    `extension` is the spec's image extension without its dot, as TAO matches it (case-sensitive).
    """
    root = reader.root
    layout = Layout(root)
    if not reader.is_dir(root):
        tally.add("layout.data-dir-missing", "the data directory does not exist", file=root)
        return layout
    layout.image_dir = _pick_dir(reader, root, images, (image_dir_name or "",) + IMAGE_DIR_CANDIDATES, tally)
    layout.label_dir = _pick_dir(reader, root, labels, (label_dir_name or "",) + LABEL_DIR_CANDIDATES, tally)
    if layout.image_dir is None:
        tried = images or ", ".join(dict.fromkeys(filter(None, (image_dir_name, *IMAGE_DIR_CANDIDATES))))
        if any(_is_image_name(n, extension) for n, kind in reader.scan(root) if kind == FILE):
            tally.add("train.image-dir-not-root", f"images lie directly in the data root, not in an image folder "
                      f"({tried}); TAO reads <root>/<image_dir_name>/<stem>", file=root)
        else:
            tally.add("layout.image-dir-missing", f"no image folder ({tried}) under the data root", file=root)
    if layout.label_dir is None:
        tried = labels or ", ".join(dict.fromkeys(filter(None, (label_dir_name, *LABEL_DIR_CANDIDATES))))
        tally.add("layout.label-dir-missing", f"no label folder ({tried}) under the data root", file=root)
    if layout.image_dir is None:
        return layout
    unreadable: set[str] = set()  # stems of links and special files: reported already, never read
    label_stems: set[str] = set()
    if layout.label_dir is not None:
        label_stems = {n[:-4] for n in _regular_files(reader, layout.label_dir, tally, unreadable)
                       if n.endswith(".txt")}
    names = _regular_files(reader, layout.image_dir, tally, unreadable)
    layout.items = pair_images(layout.image_dir, names, label_stems, layout.label_dir, tally, extension, unreadable)
    if not layout.items:
        others = sum(1 for n in names if _is_image_name(n, extension))
        tally.add("layout.no-images", f"the image folder holds no file ending in .{extension}"
                  + (f" ({others} image(s) with another extension, which TAO ignores)" if others else ""),
                  file=layout.image_dir)
    return layout


def pair_images(image_dir: str, names: list[str], label_stems: set[str], label_dir: str | None,
                tally: Tally, extension: str = "png", unreadable: set[str] = frozenset()) -> list[tuple[str, bool]]:
    """Pair the frames TAO lists (names ending in `.<extension>`) with label stems.

    `label_stems` is consumed (what is left had no image); `unreadable` are stems whose label is a
    link or special file (already reported, so no second finding for the missing label).
    """
    images = []
    for name in names:
        if not _is_image_name(name, extension):
            tally.add("layout.stray-file", "not a .png, .jpg or .jpeg file", file=os.path.join(image_dir, name))
        elif not name.endswith("." + extension):
            tally.add("image.extension-mismatch", f"extension {name.rsplit('.', 1)[1]!r} differs from the spec's "
                      f"image_extension {extension!r} (case-sensitive): TAO does not list this image",
                      file=os.path.join(image_dir, name))
        images.append(name)
    images.sort(key=lambda n: n.rsplit(".", 1))
    items: list[tuple[str, bool]] = []
    previous: str | None = None
    for name in images:
        stem = name.rsplit(".", 1)[0]
        if stem == previous:
            tally.add("pair.duplicate-frame", f"frame {stem!r} exists as {name} and another image; TAO only lists "
                      f"{stem}.{extension}", file=os.path.join(image_dir, name))
        previous = stem
        if not name.endswith("." + extension):
            continue
        labelled = stem in label_stems
        if not labelled and stem not in unreadable:
            where = f"{label_dir}/{stem}.txt" if label_dir else f"{stem}.txt"
            tally.add("pair.image-without-label", f"no label file {where}", file=os.path.join(image_dir, name))
        items.append((name, labelled))
    seen = {n.rsplit(".", 1)[0] for n in images}
    for stem in sorted(label_stems - seen - unreadable):
        tally.add("pair.label-without-image", f"no image {stem}.{extension} in {image_dir}",
                  file=os.path.join(label_dir or "", stem + ".txt"))
    return items
