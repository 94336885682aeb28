"""Checking image+label pairs: the per-file work, run in chunks by worker processes or threads.

Everything here is free of global state so a chunk runs the same in the calling process (small
datasets), in a pool worker (large local ones) and in a thread (blobs, read over the network).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from tasks.dataset.images import ImageInfo, ImageProbeError, probe
from tasks.dataset.labels import LabelRules, check_label_file
from tasks.dataset.readers import DatasetReader
from tasks.dataset.tally import Tally
from tasks.files import NotRegular

#: extension (lower case, no dot) -> the format TAO's decoder will assume for it
EXTENSION_FORMAT = {"png": "png", "jpg": "jpeg", "jpeg": "jpeg"}


@dataclass(frozen=True)
class PairRules:
    image_dir: str
    label_dir: str
    extension: str  # the spec's image_extension, no dot, as written
    width: int = 0  # spec output size; 0 = unknown
    height: int = 0
    channels: int = 0
    auto_resize: bool = False
    deep: bool = False
    labels: LabelRules = LabelRules()
    max_examples: int = 20


def check_pairs(rules: PairRules, items: list[tuple[str, bool]], reader: DatasetReader) -> Tally:
    """Check each (image name, has a label file) of one chunk, and the label `<stem>.txt` when present."""
    tally = Tally(max_examples=rules.max_examples)
    for name, has_label in items:
        size = _check_image(os.path.join(rules.image_dir, name), name, rules, tally, reader)
        if has_label:
            stem = name.rsplit(".", 1)[0]
            check_label_file(os.path.join(rules.label_dir, stem + ".txt"), size, rules.labels, tally, reader)
            tally.totals["pairs"] += 1
    return tally


def _check_image(path: str, name: str, rules: PairRules, tally: Tally, reader: DatasetReader
                 ) -> tuple[int, int] | None:
    tally.totals["images"] += 1
    ext = name.rsplit(".", 1)[-1] if "." in name else ""
    try:
        with reader.open_image(path) as source:
            info = probe(source, reader.head_bytes)
    except NotRegular as exc:  # swapped for a link or FIFO since the listing: never read
        tally.not_followed(path, exc.kind, "this image")
        return None
    except ImageProbeError as exc:
        tally.add(f"image.{exc.kind}", str(exc), file=path)
        return None
    except OSError as exc:
        tally.add("image.unreadable", f"cannot be read: {exc.strerror}", file=path)
        return None
    claimed = EXTENSION_FORMAT.get(ext.lower())
    if claimed is not None and claimed != info.format:
        tally.add("image.format-mismatch", f"the file is a {info.format.upper()} named .{ext}; TensorFlow's "
                  "decoder reads the bytes, so it trains, but tools that trust the name will not", file=path)
    if not info.complete:
        tally.add("image.truncated", f"{info.format.upper()} ends without its end marker (cut short)", file=path)
    elif rules.deep:
        reason = reader.decode(path)
        if reason:
            tally.add("image.corrupt", f"does not decode: {reason}", file=path)
    _check_pixels(info, path, rules, tally)
    tally.add_size(info.width, info.height)
    return info.width, info.height


def _check_pixels(info: ImageInfo, path: str, rules: PairRules, tally: Tally) -> None:
    if info.format == "jpeg" and info.channels not in (1, 3):
        tally.add("image.channels-unsupported", f"JPEG with {info.channels} components (CMYK?); TensorFlow "
                  "decodes it to 3 channels", file=path)
    if info.has_alpha:
        tally.add("image.alpha", f"PNG with an alpha channel ({info.channels} channels)", file=path)
    if info.bit_depth == 16:
        tally.add("image.16-bit", "16 bits per channel", file=path)
    colour = 1 if info.channels in (1, 2) else 3
    if rules.channels in (1, 3) and colour != rules.channels:
        kind = "grayscale" if colour == 1 else "colour"
        tally.add("image.channels-mismatch", f"{kind} image, the spec's output_image_channel is {rules.channels}",
                  file=path)
    if rules.width and rules.height and not rules.auto_resize and (info.width, info.height) != (rules.width,
                                                                                                 rules.height):
        tally.add("image.size-mismatch", _size_effect(info.width, info.height, rules.width, rules.height), file=path)


def _size_effect(w: int, h: int, out_w: int, out_h: int) -> str:
    """Say what TAO's pad-then-crop-top-left does to this image."""
    effects = []
    if w > out_w or h > out_h:
        effects.append(f"the right {max(0, w - out_w)} and bottom {max(0, h - out_h)} px are cropped away "
                       "(with boxes there)")
    if w < out_w or h < out_h:
        effects.append(f"{max(0, out_w - w)} px right and {max(0, out_h - h)} px bottom are zero padding")
    return (f"{w}x{h} differs from the spec's {out_w}x{out_h} and enable_auto_resize is off: TAO crops the "
            f"top-left {out_w}x{out_h}, so " + " and ".join(effects))
