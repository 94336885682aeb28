"""`validate_dataset`: every pre-flight check of a KITTI dataset against the spec facts, in one pass.

The dataset may be a local folder or any blob location (validated where it lies, see
tasks.dataset.blob_reader): the same rules read through either reader. Per-file work (header
probes, label lines) runs in chunks: on local files on a process pool so both cores work despite
the GIL, on blobs on a thread pool that keeps `CONCURRENCY` ranged reads in flight. Each chunk
returns a bounded `Tally`, so memory does not grow with the findings; chunks are merged in order,
so the examples kept are the same whichever reader or pool ran them.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor

from tasks.dataset.blob_reader import BlobReader
from tasks.dataset.feasibility import FrameCounts, check_image_root, check_tfrecords, check_training
from tasks.dataset.kitti_folders import Layout, find_layout
from tasks.dataset.labels import LabelRules
from tasks.dataset.pairs import PairRules, check_pairs
from tasks.dataset.readers import DatasetReader, LocalReader
from tasks.dataset.report import ValidationReport
from tasks.dataset.spec_rules import check_classes, check_spec, spec_extension
from tasks.dataset.tally import Tally
from tasks.spec.facts import SpecFacts
from tasks.storage import StorageAccess, parse_location

#: Pairs per work unit: large enough to amortise pickling, small enough for a live progress bar.
CHUNK = 500
#: Pairs per work unit on blobs: each thread reads its chunk's pairs one after the other.
BLOB_CHUNK = 20
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
    access: StorageAccess | None = None,
    frame_checks: bool = True,
) -> ValidationReport:
    """Check `data_dir` (a KITTI root) and the optional validation data and staged TFRecords.

    `data_dir` and `validation_data_dir` are local folders or blob locations (az://, https://,
    abfss://, azureml://; reached with `access`), validated where they lie. `images`/`labels` name
    the sub-folders when they are not the spec's or TAO's defaults. `frame_checks` off leaves out
    the checks on frame counts (steps per epoch, validation batches), for a caller that runs them
    later on counts from TFRecords. Returns the report; it never raises for bad data (see
    `ValidationReport.to_error`); a storage fault is raised as the storage layer's error.

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
    reader = open_reader(data_dir, access)
    val_reader = open_reader(validation_data_dir, access) if validation_data_dir else None
    layout = find_layout(reader, tally, **dirs)
    val_layout = find_layout(val_reader, tally, **dirs) if val_reader else None
    if facts.kind == "train":
        check_image_root(facts, os.path.basename(layout.image_dir or ""), tally)

    readers = [(reader, layout)] + ([(val_reader, val_layout)] if val_reader else [])
    _check_files(readers, facts, deep, workers, progress, tally)

    check_classes(facts, tally.class_instances, tally.class_images, tally)
    frames = FrameCounts(train=sum(1 for _, labelled in layout.items if labelled) or None)
    if val_layout is not None:
        frames.validation = sum(1 for _, labelled in val_layout.items if labelled)
    if tfrecords_dir is not None:
        frames.take(check_tfrecords(facts, os.fspath(tfrecords_dir), tally))
    if validation_tfrecords_dir is not None:
        frames.take(check_tfrecords(facts, os.fspath(validation_tfrecords_dir), tally, validation=True))
    if frame_checks:
        check_training(facts, frames, tally, gpus=gpus)

    reads: dict[str, int] = {}
    for r, _ in readers:
        for key, n in r.stats().items():
            reads[key] = reads.get(key, 0) + n
    return ValidationReport.from_tally(
        tally, data_dir=reader.root, image_dir=layout.image_dir, label_dir=layout.label_dir,
        strict=strict, deep=deep, frames={"train": frames.train, "validation": frames.validation},
        seconds=time.perf_counter() - started, reads=reads,
    )


def open_reader(location: str | os.PathLike, access: StorageAccess | None = None) -> DatasetReader:
    """The reader for a local folder (the path as given) or a blob location.

    >>> open_reader("data/kitti").root
    'data/kitti'
    """
    loc = parse_location(location if isinstance(location, str) else os.fspath(location))
    if loc.kind != "local":
        return BlobReader(loc.original, access)
    text = os.fspath(location)
    return LocalReader(str(loc.path) if text.startswith("file:") else text)


def _rules_for(layout: Layout, facts: SpecFacts, deep: bool, max_examples: int) -> PairRules:
    return PairRules(
        image_dir=layout.image_dir or "", label_dir=layout.label_dir or "", extension=spec_extension(facts),
        width=facts.output_width, height=facts.output_height, channels=facts.output_channels,
        auto_resize=facts.enable_auto_resize, deep=deep, max_examples=max_examples,
        labels=LabelRules(min_bbox_width=facts.min_bbox_width, min_bbox_height=facts.min_bbox_height),
    )


def _chunks(readers: list[tuple[DatasetReader, Layout]], facts: SpecFacts, deep: bool, max_examples: int,
            size: int) -> Iterator[tuple[PairRules, list[tuple[str, bool]], DatasetReader]]:
    for reader, layout in readers:
        rules = _rules_for(layout, facts, deep, max_examples)
        for start in range(0, len(layout.items), size):
            yield rules, layout.items[start:start + size], reader


def _context() -> multiprocessing.context.BaseContext:
    """fork where it exists: spawn/forkserver re-run the caller's __main__ (a flow script without a
    __main__ guard would start again in every worker). The children run only `check_pairs`, which
    takes no lock another thread of the parent (Prefect's) may hold; Pillow is imported beforehand."""
    if "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def _pool(readers: list[tuple[DatasetReader, Layout]], workers: int, total: int) -> tuple[Executor | None, int]:
    """Threads for blobs (the work is waiting on the network), processes for local files, or none."""
    if total == 0:
        return None, CHUNK
    if not all(r.forkable for r, _ in readers):
        threads = max(r.concurrency for r, _ in readers)
        return ThreadPoolExecutor(max_workers=threads, thread_name_prefix="validate"), BLOB_CHUNK
    if workers <= 1 or total < POOL_THRESHOLD:
        return None, CHUNK
    return ProcessPoolExecutor(max_workers=workers, mp_context=_context()), CHUNK


def _check_files(readers: list[tuple[DatasetReader, Layout]], facts: SpecFacts, deep: bool, workers: int,
                 progress: Progress | None, tally: Tally) -> None:
    total = sum(len(layout.items) for _, layout in readers)
    done = 0
    if progress:
        progress(0, total)
    if deep:
        import PIL.Image  # noqa: F401  (imported before forking, see _context)
    pool, size = _pool(readers, workers, total)
    work = _chunks(readers, facts, deep, tally.max_examples, size)
    if pool is None:
        for rules, items, reader in work:
            tally.merge(check_pairs(rules, items, reader))
            done += len(items)
            if progress:
                progress(done, total)
        return
    with pool:
        # map keeps chunk order, so the "first N examples" are the same on every run and reader
        for part in pool.map(check_pairs, *zip(*work)):
            tally.merge(part)
            done += part.totals["images"]
            if progress:
                progress(done, total)
