"""The contact sheet: sample frames in a grid, each with its KITTI boxes drawn and labelled.

Only the sampled frames are decoded, a JPEG at the reduced size it is shown at (Pillow's
`draft`), so a sheet costs the same on any dataset size. Boxes are scaled from the image's own
pixel grid, the one the KITTI labels are written in.
"""

from __future__ import annotations

import io
from pathlib import Path

from tasks.report.charts import PALETTE
from tasks.report.kitti_sample import Box, open_image, read_boxes, sample_frames
from tasks.report.picture import Picture, short

CELL_W, CELL_H = 320, 200
CAPTION_H = 18
COLUMNS = 4
MAX_COUNT = 48
MAX_LABELS_PER_FRAME = 40


def _font(size: int):
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def _color_for(name: str, classes: list[str]) -> str:
    return PALETTE[classes.index(name) % len(PALETTE)] if name in classes else "#ffffff"


def _draw_frame(sheet, draw, image, boxes: list[Box], origin: tuple[int, int], caption: str,
                classes: list[str], font, small) -> None:
    x0, y0 = origin
    width, height = image.size  # the label grid, before any draft reduction
    image.draft("RGB", (CELL_W, CELL_H))
    thumb = image.convert("RGB")
    thumb.thumbnail((CELL_W, CELL_H - CAPTION_H))
    scale = thumb.width / width
    dx, dy = x0 + (CELL_W - thumb.width) // 2, y0 + (CELL_H - CAPTION_H - thumb.height) // 2
    sheet.paste(thumb, (dx, dy))
    for box in boxes[:MAX_LABELS_PER_FRAME]:
        color = _color_for(box.name, classes)
        rect = [dx + box.x1 * scale, dy + box.y1 * scale, dx + box.x2 * scale, dy + box.y2 * scale]
        draw.rectangle(rect, outline=color, width=2)
        label = short(box.name, 14)
        left, top, right, bottom = draw.textbbox((0, 0), label, font=small)
        tx, ty = rect[0], max(dy, rect[1] - (bottom - top) - 4)
        draw.rectangle([tx, ty, tx + right - left + 4, ty + bottom - top + 4], fill=color)
        draw.text((tx + 2 - left, ty + 2 - top), label, fill="#000000" if color in ("#F0E442", "#E69F00",
                  "#56B4E9", "#ffffff") else "#ffffff", font=small)
    more = f" (+{len(boxes) - MAX_LABELS_PER_FRAME} boxes)" if len(boxes) > MAX_LABELS_PER_FRAME else ""
    draw.text((x0 + 4, y0 + CELL_H - CAPTION_H + 2), short(caption, 40) + more, fill="#333333", font=font)


def contact_sheet(data_dir: Path, *, count: int = 12, seed: int = 0, image_dir_name: str | None = None,
                  label_dir_name: str | None = None, classes: list[str] | None = None) -> Picture:
    """Up to `count` sample frames of a KITTI folder in a grid, boxes drawn and labelled by class.

    `classes` fixes the colour of each class (e.g. the mapping's keys); by default the classes
    met are coloured in the order met.

    >>> contact_sheet(Path("/nonexistent")).alt
    'no frames to show: no image folder found'
    """
    from PIL import Image, ImageDraw

    count = max(1, min(count, MAX_COUNT))
    # Draw from more frames than shown, to prefer frames that have boxes.
    frames = sample_frames(Path(data_dir), count=count * 3, seed=seed, image_dir_name=image_dir_name,
                           label_dir_name=label_dir_name)
    loaded = [(frame, read_boxes(frame.label)) for frame in frames.frames]
    loaded.sort(key=lambda item: (not item[1], item[0].image.name))
    palette = list(classes or [])
    cells = []
    for frame, boxes in loaded:
        if len(cells) == count:
            break
        image = open_image(frame.image)
        if image is None:
            continue
        palette += [b.name for b in boxes if b.name not in palette]
        cells.append((frame, boxes, image))
    columns = min(COLUMNS, max(len(cells), 1))
    rows = max(1, -(-len(cells) // columns))
    sheet = Image.new("RGB", (columns * CELL_W, rows * CELL_H), "#f4f4f4")
    draw = ImageDraw.Draw(sheet)
    font, small = _font(12), _font(11)
    for index, (frame, boxes, image) in enumerate(cells):
        origin = ((index % columns) * CELL_W, (index // columns) * CELL_H)
        with image:
            _draw_frame(sheet, draw, image, boxes, origin, frame.image.name, palette, font, small)
    if not cells:
        why = "no image folder found" if frames.image_dir is None else "no readable image in the sample"
        draw.text((10, CELL_H // 2 - 8), why, fill="#555555", font=font)
    out = io.BytesIO()
    sheet.save(out, "JPEG", quality=82, optimize=True)
    shown = f"{len(cells)} of {frames.total} frames" if cells else f"no frames to show: {why}"
    return Picture(title=f"Sample frames with their labels ({len(cells)} of {frames.total})", mime="image/jpeg",
                   data=out.getvalue(), width=sheet.width, height=sheet.height, alt=shown)
