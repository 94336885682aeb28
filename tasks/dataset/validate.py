"""`validate_dataset`: every pre-flight check of a KITTI dataset against the spec facts, in one pass;
`DatasetValidation` says what a validation needs.

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
from dataclasses import KW_ONLY, dataclass

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


@dataclass(frozen=True)
class DatasetValidation:
    """What one validation needs: the spec's facts, where the data lies, and how to check it.

    `data` (a KITTI root) and `validation_data` are local folders or blob locations (az://,
    https://, abfss://, azureml://; reached with `access`), validated where they lie; `tfrecords`
    and `validation_tfrecords` are local folders of staged shards. `images`/`labels` name the
    sub-folders when they are not the spec's or TAO's defaults. `deep` decodes every image fully;
    `strict` fails on warnings too; `workers` processes read local files; `gpus` is the training
    job's GPU count (steps per epoch); `max_examples` findings are kept per code. `frame_checks` off leaves
    out the checks on frame counts (steps per epoch, validation batches), for a caller that runs
    them later on counts from TFRecords.
    """

    facts: SpecFacts
    data: str | os.PathLike
    _: KW_ONLY
    validation_data: str | os.PathLike | None = None
    tfrecords: str | os.PathLike | None = None
    validation_tfrecords: str | os.PathLike | None = None
    images: str | None = None
    labels: str | None = None
    access: StorageAccess | None = None
    deep: bool = False
    strict: bool = False
    workers: int = 2
    gpus: int = 1
    max_examples: int = 20
    frame_checks: bool = True


def validate_dataset(job: DatasetValidation, progress: Progress | None = None) -> ValidationReport:
    """Check the data of `job` (and its validation data and staged TFRecords) against its spec facts.

    `progress(done, total)` is called as pairs are checked. Returns the report; it never raises for
    bad data (see `ValidationReport.to_error`); a storage fault is raised as the storage layer's error.

    >>> import tempfile; from dataclasses import replace; from pathlib import Path; from PIL import Image
    >>> root = Path(tempfile.mkdtemp())
    >>> for sub in ("image_2", "label_2"): (root / sub).mkdir()
    >>> Image.new("RGB", (1248, 384)).save(root / "image_2" / "000001.png")
    >>> _ = (root / "label_2" / "000001.txt").write_text("car 0 0 0 100 120 200 220 0 0 0 0 0 0 0\\n")
    >>> facts = SpecFacts(output_width=1248, output_height=384, output_channels=3, image_extension="png",
    ...                   target_class_mapping={"car": "car"}, validation_fold=0)
    >>> validate_dataset(DatasetValidation(facts, root)).summary()
    'dataset passed: 1 images, 1 label files, 1 objects; 0 errors, 0 warnings in ... s'
    >>> narrower = replace(facts, output_width=960)  # TAO would crop the images: a warning
    >>> report = validate_dataset(DatasetValidation(narrower, root))
    >>> report.ok, sorted(report.counts)
    (True, ['image.size-mismatch'])
    >>> validate_dataset(DatasetValidation(narrower, root, strict=True)).ok
    False
    """
    facts = job.facts
    started = time.perf_counter()
    tally = Tally(max_examples=job.max_examples)
    check_spec(facts, tally)
    dirs = dict(images=job.images, labels=job.labels, image_dir_name=facts.kitti_image_dir_name,
                label_dir_name=facts.kitti_label_dir_name, extension=spec_extension(facts))
    reader = open_reader(job.data, job.access)
    val_reader = open_reader(job.validation_data, job.access) if job.validation_data else None
    layout = find_layout(reader, tally, **dirs)
    val_layout = find_layout(val_reader, tally, **dirs) if val_reader else None
    if facts.kind == "train":
        check_image_root(facts, os.path.basename(layout.image_dir or ""), tally)

    readers = [(reader, layout)] + ([(val_reader, val_layout)] if val_reader else [])
    _check_files(readers, job, progress, tally)

    check_classes(facts, tally.class_instances, tally.class_images, tally)
    frames = FrameCounts(train=sum(1 for _, labelled in layout.items if labelled) or None)
    if val_layout is not None:
        frames.validation = sum(1 for _, labelled in val_layout.items if labelled)
    if job.tfrecords is not None:
        frames.take(check_tfrecords(facts, os.fspath(job.tfrecords), tally))
    if job.validation_tfrecords is not None:
        frames.take(check_tfrecords(facts, os.fspath(job.validation_tfrecords), tally, validation=True))
    if job.frame_checks:
        check_training(facts, frames, tally, gpus=job.gpus)

    reads: dict[str, int] = {}
    for r, _ in readers:
        for key, n in r.stats().items():
            reads[key] = reads.get(key, 0) + n
    return ValidationReport.from_tally(
        tally, data_dir=reader.root, image_dir=layout.image_dir, label_dir=layout.label_dir,
        strict=job.strict, deep=job.deep, frames={"train": frames.train, "validation": frames.validation},
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


def _check_files(readers: list[tuple[DatasetReader, Layout]], job: DatasetValidation, progress: Progress | None,
                 tally: Tally) -> None:
    total = sum(len(layout.items) for _, layout in readers)
    done = 0
    if progress:
        progress(0, total)
    if job.deep:
        import PIL.Image  # noqa: F401  (imported before forking, see _context)
    pool, size = _pool(readers, job.workers, total)
    work = _chunks(readers, job.facts, job.deep, tally.max_examples, size)
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
