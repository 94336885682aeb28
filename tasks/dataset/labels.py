"""KITTI label files, checked line by line the way TAO's dataset_convert reads them.

Field layout: class truncation occlusion alpha x1 y1 x2 y2 h w l x y z rotation_y. TAO reads the
file as text (UTF-8, universal newlines), skips blank lines, splits on whitespace, converts fields
2-16 with float(), asserts exactly 15 fields, takes int() of the occlusion and the box corners
(so NaN or inf there crashes it), drops boxes whose int corners are inverted (listing them in
`<output>_warning.json`) and lower-cases the class. DetectNet_v2 trains on the class and box only.

Files are read in bounded pieces: a line longer than `MAX_LINE_BYTES` (no KITTI line is) is a
finding and skipped without being held in memory, so a 200 MB single-line file costs kilobytes.
"""

from __future__ import annotations

import io
import math
from collections import Counter
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from tasks.dataset.tally import Tally
from tasks.files import NotRegular

KITTI_FIELDS = 15
#: Longest line read as a label line; a 15-field KITTI line is about 100 bytes.
MAX_LINE_BYTES = 64 * 1024
#: Label files up to this size are read in one piece (fast); larger ones a line at a time (bounded).
WHOLE_FILE_BYTES = 1024 * 1024
#: Bytes buffered per read of a larger label file (one ranged GET each, on a blob).
LINE_BUFFER = 1024 * 1024
#: Pixels a box may stick out of the image before we call it out (annotation tools round).
BOX_TOLERANCE_PX = 2.0
_OCCLUSION = frozenset((0.0, 1.0, 2.0, 3.0))
_NUMBER_START = frozenset("0123456789+-.nNiI")  # float() also reads nan / inf
_CRASHING = (1, 3, 4, 5, 6)  # value indexes TAO takes int() of: occlusion and the box corners
_UNUSED = (2, 7, 8, 9, 10, 11, 12, 13)  # alpha and the 3-D fields (truncation has its own check)


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


class NotText(ValueError):
    """The label file is not UTF-8 (TAO's text-mode read fails on the whole file)."""

    def __init__(self, line: int, byte: int) -> None:
        super().__init__(f"not UTF-8 text (line {line}, byte {byte} of the line)")
        self.line = line


def read_lines(fh, limit: int = MAX_LINE_BYTES) -> Iterator[tuple[int, bytes | None]]:
    """(line number, bytes) of each line as TAO's text mode splits them (\\n, \\r\\n and \\r end a line);
    None instead of the bytes for a line over `limit`, which is skipped in pieces of `limit` bytes."""
    lineno = 0
    while True:
        raw = fh.readline(limit + 1)
        if not raw:
            return
        if len(raw) > limit and not raw.endswith(b"\n"):
            while raw and not raw.endswith(b"\n"):  # drain the rest of the line, a piece at a time
                raw = fh.readline(limit)
            lineno += 1
            yield lineno, None
            continue
        line = raw[:-1] if raw.endswith(b"\n") else raw
        if line.endswith(b"\r"):
            line = line[:-1]
        for part in line.split(b"\r"):
            lineno += 1
            yield lineno, part


def text_lines(fh: BinaryIO, size: int) -> Iterator[tuple[int, str | None]]:
    """(line number, text) of each line of the unbuffered binary file `fh` (at its start, `size`
    bytes when opened), None for a line over `MAX_LINE_BYTES`; `NotText` on bad UTF-8.

    A file up to `WHOLE_FILE_BYTES` is read and decoded at once (every real label file); a larger one
    a line at a time, so memory stays bounded whatever the file holds.
    """
    if size <= WHOLE_FILE_BYTES:
        data = _read_small(fh)
        if data is not None:
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError as exc:
                head = data[: exc.start].replace(b"\r\n", b"\n").replace(b"\r", b"\n")
                raise NotText(head.count(b"\n") + 1, len(head) - (head.rfind(b"\n") + 1)) from None
            if "\r" in text:
                text = text.replace("\r\n", "\n").replace("\r", "\n")
            for lineno, line in enumerate(text.split("\n"), start=1):
                yield lineno, (line if len(line) <= MAX_LINE_BYTES else None)
            return
        fh.seek(0)
    for lineno, raw in read_lines(io.BufferedReader(fh, LINE_BUFFER)):
        if raw is None:
            yield lineno, None
            continue
        try:
            yield lineno, raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise NotText(lineno, exc.start) from None


def _read_small(fh: BinaryIO) -> bytes | None:
    """The whole file, or None when it holds more than `WHOLE_FILE_BYTES` (it grew since the fstat)."""
    chunks, total = [], 0
    while total <= WHOLE_FILE_BYTES:
        chunk = fh.read(WHOLE_FILE_BYTES + 1 - total)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)
    return None


class LabelOpener(Protocol):
    """Where label files are read from: `open_label(path)` gives (binary file, size) or raises
    `NotRegular` / `OSError` (tasks.dataset.readers)."""

    def open_label(self, path: str) -> AbstractContextManager[tuple[BinaryIO, int]]: ...


def check_label_file(path: str, size: tuple[int, int] | None, rules: LabelRules, tally: Tally,
                     opener: LabelOpener) -> None:
    """Check one label file against its image's (width, height); `size` None when the image is unreadable."""
    try:
        with opener.open_label(path) as (fh, file_size):
            tally.totals["labels"] += 1
            _check_lines(fh, file_size, path, size, rules, tally)
    except NotRegular as exc:  # swapped for a link or FIFO since the listing: never read
        tally.not_followed(path, exc.kind, "this label file")
    except OSError as exc:
        tally.add("label.unreadable", f"cannot be read: {exc.strerror}", file=path)


def _check_lines(fh: BinaryIO, file_size: int, path: str, size: tuple[int, int] | None, rules: LabelRules,
                 tally: Tally) -> None:
    instances: Counter = Counter()
    lines = 0
    try:
        for lineno, text in text_lines(fh, file_size):
            if text is None:
                tally.add("label.line-too-long", f"line longer than {MAX_LINE_BYTES} bytes, skipped unread",
                          file=path, line=lineno)
                continue
            fields = text.split()
            if fields:  # TAO skips blank lines
                lines += 1
                name = _check_line(fields, path, lineno, size, rules, tally)
                if name is not None:
                    instances[name] += 1
    except NotText as exc:
        tally.add("label.unreadable", str(exc), file=path, line=exc.line)
        return
    if instances:
        tally.totals["objects"] += sum(instances.values())
        tally.add_classes(instances)
    if not lines:  # a negative example: legal, but worth a count
        tally.totals["empty_label_files"] += 1


def _check_line(fields: list[str], path: str, lineno: int, size: tuple[int, int] | None,
                rules: LabelRules, tally: Tally) -> str | None:
    """Problems of one line; the lower-cased class when the line yields an object TAO trains on."""
    n, name = len(fields), fields[0]
    if n != KITTI_FIELDS:
        if n == KITTI_FIELDS - 1 and name[0] in _NUMBER_START and _is_number(name):
            code, message = "label.class-missing", f"14 fields starting with the number {name!r}: no class name"
        elif n == KITTI_FIELDS + 1:
            code, message = "label.score-column", f"16 fields: a trailing score {fields[15]!r} after the 15 KITTI fields"
        else:
            code, message = "label.field-count", f"{n} fields, KITTI needs 15" + (
                " (a class name with a space?)" if n > KITTI_FIELDS else "")
        tally.add(code, message, file=path, line=lineno)
        return None
    try:
        values = list(map(float, fields[1:]))
    except ValueError:
        bad = next(i for i, t in enumerate(fields[1:], start=2) if not _is_number(t))
        tally.add("label.not-a-number", f"field {bad} {fields[bad - 1]!r} is not a number", file=path, line=lineno)
        return None
    if not name.isascii():
        bom = " (it starts with a byte-order mark)" if name.startswith("\ufeff") else ""
        tally.add("label.class-not-ascii", f"class name {name!r} is not ASCII{bom}", file=path, line=lineno)
        return None
    if not all(map(math.isfinite, values)):
        crashing = [i for i in _CRASHING if not math.isfinite(values[i])]
        if crashing:
            tally.add("label.not-finite", f"field {crashing[0] + 2} is {fields[crashing[0] + 1]!r}; TAO takes int() "
                      "of it", file=path, line=lineno)
            return None
        unused = next((i for i in _UNUSED if not math.isfinite(values[i])), None)
        if unused is not None:
            tally.add("label.not-finite-unused", f"field {unused + 2} is {fields[unused + 1]!r} (stored, not used)",
                      file=path, line=lineno)
    truncation, occlusion, _alpha, x1, y1, x2, y2 = values[:7]
    if not 0.0 <= truncation <= 1.0:
        tally.add("label.truncation-range", f"truncation {fields[1]} is outside [0, 1]", file=path, line=lineno)
    if occlusion not in _OCCLUSION:
        tally.add("label.occlusion-range", f"occlusion {fields[2]} is not 0, 1, 2 or 3 (TAO stores {int(occlusion)})",
                  file=path, line=lineno)
    if int(x1) >= int(x2) or int(y1) >= int(y2):
        tally.add("label.box-degenerate", f"box ({fields[4]}, {fields[5]}, {fields[6]}, {fields[7]}) has x1 >= x2 or "
                  "y1 >= y2 once truncated to whole pixels: TAO drops the object", file=path, line=lineno)
        return None
    if size is not None:
        width, height = size
        if x2 <= 0 or y2 <= 0 or x1 >= width or y1 >= height:
            tally.add("label.box-outside-image", f"box ({x1:g}, {y1:g}, {x2:g}, {y2:g}) lies outside the "
                      f"{width}x{height} image: kept by dataset_convert, cropped away in training", file=path, line=lineno)
        elif (x1 < -rules.tolerance or y1 < -rules.tolerance
              or x2 > width + rules.tolerance or y2 > height + rules.tolerance):
            tally.add("label.box-exceeds-image", f"box ({x1:g}, {y1:g}, {x2:g}, {y2:g}) extends beyond the "
                      f"{width}x{height} image", file=path, line=lineno)
    if x2 - x1 < rules.min_bbox_width or y2 - y1 < rules.min_bbox_height:
        tally.add("label.box-too-small", f"box is {x2 - x1:g}x{y2 - y1:g} px, under the spec's min_bbox "
                  f"{rules.min_bbox_width:g}x{rules.min_bbox_height:g}", file=path, line=lineno)
    return name.lower()
