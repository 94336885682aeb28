"""`validate_dataset`: every pre-flight check of a KITTI dataset against the spec facts, in one pass.

Per-file work (header probes, label lines) runs in chunks on a process pool so both cores work
despite the GIL; each chunk returns a bounded `Tally`, so memory does not grow with the findings.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor

from tasks.dataset.feasibility import FrameCounts, check_image_root, check_tfrecords, check_training
from tasks.dataset.kitti_folders import Layout, find_layout
from tasks.dataset.labels import LabelRules
from tasks.dataset.pairs import PairRules, check_pairs
from tasks.dataset.report import ValidationReport
from tasks.dataset.spec_rules import check_classes, check_spec, spec_extension
from tasks.dataset.tally import Tally
from tasks.spec.facts import SpecFacts

#: Pairs per work unit: large enough to amortise pickling, small enough for a live progress bar.
CHUNK = 500
#: Below this many pairs a pool costs more than it saves.
POOL_THRESHOLD = 2_000

Progress = Callable[[int, int], None]


def validate_dataset(
    facts: SpecFacts,
    data_dir: str | os.PathLike,
    images: str | None = None,
    labels: str | None = None,
    deep: bool = False,
    strict: bool = False,
    workers: int = 2,
    progress: Progress | None = None,
    *,
    validation_data_dir: str | os.PathLike | None = None,
    tfrecords_dir: str | os.PathLike | None = None,
    validation_tfrecords_dir: str | os.PathLike | None = None,
    gpus: int = 1,
    max_examples: int = 20,
) -> ValidationReport:
    """Check `data_dir` (a KITTI root) and the optional staged validation data and TFRecords.

    `images`/`labels` name the sub-folders when they are not the spec's or TAO's defaults.
    Returns the report; it never raises for bad data (see `ValidationReport.to_error`).

    >>> from tasks.spec import extract_facts, parse_spec
    >>> facts = extract_facts(parse_spec(open("specs/demo_train_resnet18.txt").read(), "spec.txt"))  # doctest: +SKIP
    >>> validate_dataset(facts, "/data/kitti/training").summary()  # doctest: +SKIP
    'dataset passed: 6000 images, 6000 label files, 21410 objects; 0 errors, 3 warnings in 1.9 s'
    """
    started = time.perf_counter()
    tally = Tally(max_examples=max_examples)
    check_spec(facts, tally)
    dirs = dict(images=images, labels=labels, image_dir_name=facts.kitti_image_dir_name,
                label_dir_name=facts.kitti_label_dir_name, extension=spec_extension(facts))
    layout = find_layout(os.fspath(data_dir), tally, **dirs)
    val_layout = find_layout(os.fspath(validation_data_dir), tally, **dirs) if validation_data_dir else None
    if facts.kind == "train":
        check_image_root(facts, os.path.basename(layout.image_dir or ""), tally)

    _check_files([l for l in (layout, val_layout) if l is not None], facts, deep, workers, progress, tally)

    check_classes(facts, tally.class_instances, tally.class_images, tally)
    frames = FrameCounts(train=sum(1 for _, labelled in layout.items if labelled) or None)
    if val_layout is not None:
        frames.validation = sum(1 for _, labelled in val_layout.items if labelled)
    if tfrecords_dir is not None:
        frames.take(check_tfrecords(facts, os.fspath(tfrecords_dir), tally))
    if validation_tfrecords_dir is not None:
        frames.take(check_tfrecords(facts, os.fspath(validation_tfrecords_dir), tally, validation=True))
    check_training(facts, frames, tally, gpus=gpus)

    return ValidationReport.from_tally(
        tally, data_dir=os.fspath(data_dir), image_dir=layout.image_dir, label_dir=layout.label_dir,
        strict=strict, deep=deep, frames={"train": frames.train, "validation": frames.validation},
        seconds=time.perf_counter() - started,
    )


def _rules_for(layout: Layout, facts: SpecFacts, deep: bool, max_examples: int) -> PairRules:
    return PairRules(
        image_dir=layout.image_dir or "", label_dir=layout.label_dir or "", extension=spec_extension(facts),
        width=facts.output_width, height=facts.output_height, channels=facts.output_channels,
        auto_resize=facts.enable_auto_resize, deep=deep, max_examples=max_examples,
        labels=LabelRules(min_bbox_width=facts.min_bbox_width, min_bbox_height=facts.min_bbox_height),
    )


def _chunks(layouts: list[Layout], facts: SpecFacts, deep: bool, max_examples: int
            ) -> Iterator[tuple[PairRules, list[tuple[str, bool]]]]:
    for layout in layouts:
        rules = _rules_for(layout, facts, deep, max_examples)
        for start in range(0, len(layout.items), CHUNK):
            yield rules, layout.items[start:start + CHUNK]


def _context() -> multiprocessing.context.BaseContext:
    """fork where it exists: spawn/forkserver re-run the caller's __main__ (a flow script without a
    __main__ guard would start again in every worker). The children run only `check_pairs`, which
    takes no lock another thread of the parent (Prefect's) may hold; Pillow is imported beforehand."""
    if "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def _check_files(layouts: list[Layout], facts: SpecFacts, deep: bool, workers: int,
                 progress: Progress | None, tally: Tally) -> None:
    total = sum(len(l.items) for l in layouts)
    done = 0
    if progress:
        progress(0, total)
    work = _chunks(layouts, facts, deep, tally.max_examples)
    if deep:
        import PIL.Image  # noqa: F401  (imported before forking, see _context)

    if workers <= 1 or total < POOL_THRESHOLD:
        for rules, items in work:
            tally.merge(check_pairs(rules, items))
            done += len(items)
            if progress:
                progress(done, total)
        return
    with ProcessPoolExecutor(max_workers=workers, mp_context=_context()) as pool:
        # map keeps chunk order, so the "first N examples" are the same on every run
        for part in pool.map(check_pairs, *zip(*work)):
            tally.merge(part)
            done += part.totals["images"]
            if progress:
                progress(done, total)
