"""KITTI label files, checked line by line the way TAO's dataset_convert reads them.

Field layout: class truncation occlusion alpha x1 y1 x2 y2 h w l x y z rotation_y. TAO splits on
whitespace, lower-cases the class, parses fields 2-15 as floats and drops boxes whose int-truncated
corners are inverted; DetectNet_v2 uses only the class and the box.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

from tasks.dataset.tally import Tally

KITTI_FIELDS = 15
#: Pixels a box may stick out of the image before we call it out (annotation tools round).
BOX_TOLERANCE_PX = 2.0
_OCCLUSION = frozenset((0.0, 1.0, 2.0, 3.0))
_NUMBER_START = frozenset("0123456789+-.nNiI")  # float() also reads nan / inf


@dataclass(frozen=True, slots=True)
class LabelRules:
    min_bbox_width: float = 0.0
    min_bbox_height: float = 0.0
    tolerance: float = BOX_TOLERANCE_PX


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def check_label_file(path: str, size: tuple[int, int] | None, rules: LabelRules, tally: Tally) -> None:
    """Check one label file against its image's (width, height); `size` None when the image is unreadable."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        tally.add("label.unreadable", f"not UTF-8 text (byte {exc.start})", file=path)
        return
    except OSError as exc:
        tally.add("label.unreadable", f"cannot be read: {exc.strerror}", file=path)
        return
    tally.totals["labels"] += 1
    instances: Counter = Counter()
    lines = 0
    for lineno, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue  # TAO skips blank lines
        lines += 1
        name = _check_line(fields, path, lineno, size, rules, tally)
        if name is not None:
            instances[name] += 1
    if instances:
        tally.totals["objects"] += sum(instances.values())
        tally.add_classes(instances)
    if not lines:  # a negative example: legal, but worth a count
        tally.totals["empty_label_files"] += 1


def _check_line(fields: list[str], path: str, lineno: int, size: tuple[int, int] | None,
                rules: LabelRules, tally: Tally) -> str | None:
    """Problems of one line; the lower-cased class when the line yields an object TAO would read."""
    n = len(fields)
    if fields[0][0] in _NUMBER_START and _is_number(fields[0]):
        tally.add("label.class-missing", f"first field {fields[0]!r} is a number; the class name is missing "
                  f"({n} fields)", file=path, line=lineno)
        return None
    if n == KITTI_FIELDS + 1:
        tally.add("label.score-column", f"16 fields: a trailing score {fields[15]!r} after the 15 KITTI fields",
                  file=path, line=lineno)
    elif n != KITTI_FIELDS:
        hint = " (a class name with a space?)" if n > KITTI_FIELDS else ""
        tally.add("label.field-count", f"{n} fields, KITTI needs 15{hint}", file=path, line=lineno)
        return None
    try:
        values = list(map(float, fields[1:KITTI_FIELDS]))
    except ValueError:
        bad = next(i for i, t in enumerate(fields[1:KITTI_FIELDS], start=2) if not _is_number(t))
        tally.add("label.not-a-number", f"field {bad} {fields[bad - 1]!r} is not a number", file=path, line=lineno)
        return None
    if not all(map(math.isfinite, values)):
        bad = next(i for i, v in enumerate(values, start=2) if not math.isfinite(v))
        tally.add("label.not-finite", f"field {bad} is {fields[bad - 1]!r}", file=path, line=lineno)
        return None
    truncation, occlusion, _alpha, x1, y1, x2, y2 = values[:7]
    if not 0.0 <= truncation <= 1.0:
        tally.add("label.truncation-range", f"truncation {fields[1]} is outside [0, 1]", file=path, line=lineno)
    if occlusion not in _OCCLUSION:
        tally.add("label.occlusion-range", f"occlusion {fields[2]} is not 0, 1, 2 or 3", file=path, line=lineno)
    if int(x1) >= int(x2) or int(y1) >= int(y2):
        tally.add("label.box-degenerate", f"box ({fields[4]}, {fields[5]}, {fields[6]}, {fields[7]}) has "
                  f"x1 >= x2 or y1 >= y2 once truncated to whole pixels", file=path, line=lineno)
        return None
    if size is not None:
        width, height = size
        if x2 <= 0 or y2 <= 0 or x1 >= width or y1 >= height:
            tally.add("label.box-outside-image", f"box ({x1:g}, {y1:g}, {x2:g}, {y2:g}) lies outside the "
                      f"{width}x{height} image", file=path, line=lineno)
        elif (x1 < -rules.tolerance or y1 < -rules.tolerance
              or x2 > width + rules.tolerance or y2 > height + rules.tolerance):
            tally.add("label.box-exceeds-image", f"box ({x1:g}, {y1:g}, {x2:g}, {y2:g}) extends beyond the "
                      f"{width}x{height} image", file=path, line=lineno)
    if x2 - x1 < rules.min_bbox_width or y2 - y1 < rules.min_bbox_height:
        tally.add("label.box-too-small", f"box is {x2 - x1:g}x{y2 - y1:g} px, under the spec's min_bbox "
                  f"{rules.min_bbox_width:g}x{rules.min_bbox_height:g}", file=path, line=lineno)
    return fields[0].lower()
