"""The dataset in numbers and pictures: objects per class, box sizes, image sizes.

Counted on a bounded sample (`kitti_sample`): on a dataset up to `sample` frames the numbers are
exact, above that they describe the sample and the pictures say so.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from tasks.report.charts import GREY, PALETTE, Series, bar_chart
from tasks.report.contents import ClassCount, DatasetSummary
from tasks.report.kitti_sample import image_size, read_boxes, sample_frames
from tasks.report.picture import Picture

DEFAULT_SAMPLE = 1000
#: Box heights (pixels) are counted in these ranges: DetectNet_v2's grid cell is 16 px.
BOX_EDGES = (8, 16, 32, 64, 128, 256, 512)
MAX_CLASSES = 30
MAX_SIZES = 12
MAX_BOX_SERIES = 6
UNMAPPED = "(not mapped)"
OTHER = "other"


def box_buckets() -> list[str]:
    """Labels of the box height ranges.

    >>> box_buckets()[:3]
    ['< 8 px', '8–16 px', '16–32 px']
    """
    labels = [f"< {BOX_EDGES[0]} px"]
    labels += [f"{lo}–{hi} px" for lo, hi in zip(BOX_EDGES, BOX_EDGES[1:])]
    return labels + [f"≥ {BOX_EDGES[-1]} px"]


def _bucket(height: float) -> int:
    return sum(height >= edge for edge in BOX_EDGES)


def _target(name: str, class_mapping: dict[str, str]) -> str | None:
    target = class_mapping.get(name)
    if target is None:  # TAO lower-cases label classes; a mapping key may not be
        target = next((v for k, v in class_mapping.items() if k.lower() == name), None)
    return target


def dataset_summary(data_dir: Path, class_mapping: dict[str, str] | None = None, *, sample: int = DEFAULT_SAMPLE,
                    image_dir_name: str | None = None, label_dir_name: str | None = None,
                    shown_as: str | None = None) -> DatasetSummary:
    """Objects per class, box heights per target class and image sizes of a KITTI folder.

    `class_mapping` is the spec's `target_class_mapping` (label class -> trained class); label
    classes it does not list are counted as not mapped (TAO drops them).

    >>> dataset_summary(Path("/nonexistent")).images_total
    0
    """
    mapping = class_mapping or {}
    frames = sample_frames(Path(data_dir), count=sample, image_dir_name=image_dir_name,
                           label_dir_name=label_dir_name)
    instances: Counter = Counter()
    images: Counter = Counter()
    sizes: Counter = Counter()
    heights: dict[str, list[int]] = {}
    for frame in frames.frames:
        size = image_size(frame.image)
        sizes[f"{size[0]}x{size[1]}" if size else "unreadable"] += 1
        boxes = read_boxes(frame.label)
        for name in {box.name for box in boxes}:
            images[name] += 1
        for box in boxes:
            instances[box.name] += 1
            target = _target(box.name, mapping) or UNMAPPED
            heights.setdefault(target, [0] * (len(BOX_EDGES) + 1))[_bucket(box.height)] += 1
    classes = [ClassCount(name=n, target=_target(n, mapping), instances=c, images=images[n])
               for n, c in instances.most_common(MAX_CLASSES)]
    if len(instances) > MAX_CLASSES:
        rest = instances.most_common()[MAX_CLASSES:]
        classes.append(ClassCount(name=f"{OTHER} ({len(rest)} classes)", instances=sum(c for _, c in rest),
                                  images=0))
    return DatasetSummary(
        data_dir=shown_as or str(data_dir),
        images_total=frames.total,
        frames_sampled=len(frames.frames),
        objects_sampled=sum(instances.values()),
        classes=classes,
        box_buckets=box_buckets(),
        box_counts=_top_series(heights),
        image_sizes=_top_sizes(sizes),
    )


def _top_series(heights: dict[str, list[int]]) -> dict[str, list[int]]:
    ranked = sorted(heights, key=lambda t: (t == UNMAPPED, -sum(heights[t]), t))
    kept = {t: heights[t] for t in ranked[:MAX_BOX_SERIES]}
    rest = ranked[MAX_BOX_SERIES:]
    if rest:
        kept[OTHER] = [sum(heights[t][i] for t in rest) for i in range(len(BOX_EDGES) + 1)]
    return kept


def _top_sizes(sizes: Counter) -> dict[str, int]:
    top = dict(sizes.most_common(MAX_SIZES))
    if len(sizes) > MAX_SIZES:
        top[OTHER] = sum(n for _, n in sizes.most_common()[MAX_SIZES:])
    return top


def _scope(summary: DatasetSummary) -> str:
    if summary.exact:
        return f"all {summary.images_total} images" if summary.images_total != 1 else "the only image"
    return f"a sample of {summary.frames_sampled} of {summary.images_total} images"


def dataset_pictures(summary: DatasetSummary) -> list[Picture]:
    """Objects per class, box heights per class and images per size, as three charts.

    >>> [p.title for p in dataset_pictures(DatasetSummary(data_dir="d", images_total=0, frames_sampled=0))]
    ['Objects per class (all 0 images)', 'Box heights (all 0 images)', 'Images per size (all 0 images)']
    """
    scope = _scope(summary)
    mapped = any(c.target for c in summary.classes)  # without a mapping nothing is said about it

    def label(c: ClassCount) -> str:
        if c.target is None:
            return f"{c.name} (not mapped)" if mapped and not c.name.startswith(OTHER) else c.name
        return c.name if c.target == c.name else f"{c.name} → {c.target}"

    names = [label(c) for c in summary.classes]
    objects = bar_chart(
        f"Objects per class ({scope})", names,
        [Series("objects", [float(c.instances) for c in summary.classes], PALETTE[0])],
        unit="objects", alt=f"objects per label class in {scope}: "
        + ", ".join(f"{c.name} {c.instances}" for c in summary.classes[:10]))
    # Empty ranges at either end say nothing: the chart spans the ranges that hold boxes.
    used = [i for i in range(len(summary.box_buckets)) if any(c[i] for c in summary.box_counts.values()
                                                                  if i < len(c))]
    span = range(used[0], used[-1] + 1) if used else range(0)
    boxes = bar_chart(
        f"Box heights ({scope})", [summary.box_buckets[i] for i in span],
        [Series(t, [float(counts[i]) if i < len(counts) else None for i in span], GREY if t == UNMAPPED else None)
         for t, counts in summary.box_counts.items()],
        unit="boxes", alt=f"box heights in pixels per trained class in {scope}")
    sizes = bar_chart(
        f"Images per size ({scope})", list(summary.image_sizes),
        [Series("images", [float(n) for n in summary.image_sizes.values()], PALETTE[2])],
        unit="images", alt=f"images per size in {scope}: "
        + ", ".join(f"{s} {n}" for s, n in list(summary.image_sizes.items())[:5]))
    return [objects, boxes, sizes]
