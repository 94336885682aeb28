"""Will the training job get past its first epoch? Checks from TAO's train.py runtime rules.

Each check runs only when its inputs are known: the frame counts come from TFRecord shards when
their staging directory is given, else from the image folders that were validated. A count read
from shards names their folder, so a finding about it points at the TFRecords (shards a failed or
fake conversion left empty), not at the KITTI folder they no longer reflect.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from tasks.dataset.tally import Tally
from tasks.dataset.tfrecords import NotATFRecord, count_records, fold_of, shard_glob
from tasks.files import NotRegular
from tasks.spec.facts import SpecFacts

DEFAULT_SCALAR_LOGGING_FREQUENCY = 10  # TAO's value when the field is unset (0)


@dataclass
class FrameCounts:
    train: int | None = None
    validation: int | None = None
    #: The TFRecords folder a count was read from; None when it was counted in the KITTI folders.
    train_from: str | None = None
    validation_from: str | None = None

    def take(self, shards: FrameCounts) -> None:
        """The counts the shards hold replace what the image folders said (TAO trains on the shards)."""
        if shards.train is not None:
            self.train, self.train_from = shards.train, shards.train_from
        if shards.validation is not None:
            self.validation, self.validation_from = shards.validation, shards.validation_from


def _line_of(facts: SpecFacts, field_suffix: str) -> int | None:
    return next((p.line for p in facts.path_fields if p.field.endswith(field_suffix)), None)


def check_tfrecords(facts: SpecFacts, directory: str, tally: Tally, *, validation: bool = False) -> FrameCounts:
    """Glob the spec's tfrecords_path over the staged shards; count frames per split."""
    globs = [facts.validation_tfrecords_path] if validation else facts.tfrecords_paths
    counts = FrameCounts()
    for spec_glob in filter(None, globs):
        field = "validation_data_source.tfrecords_path" if validation else "tfrecords_path"
        line = _line_of(facts, field)
        matched, blocked = shard_glob(directory, spec_glob)
        for path, kind in blocked:
            tally.not_followed(path, kind, f"a file the glob {spec_glob!r} matches")
        if not matched and not blocked:
            tally.add("train.tfrecords-no-match", f"{spec_glob!r} matches no file in {directory}",
                      file=facts.file, line=line)
            continue
        fold_files = []
        for path in matched:
            try:
                n = count_records(path)
            except NotRegular as exc:  # swapped for a link or FIFO since the listing
                tally.not_followed(path, exc.kind, f"a file the glob {spec_glob!r} matches")
                continue
            except NotATFRecord as exc:
                tally.add("train.tfrecords-not-shard", f"the glob {spec_glob!r} matches "
                          f"{os.path.basename(path)}: {exc}", file=path)
                continue
            is_val = validation or (facts.validation_fold is not None and fold_of(path) == facts.validation_fold)
            if is_val:
                fold_files.append(path)
                counts.validation, counts.validation_from = (counts.validation or 0) + n, directory
            else:
                counts.train, counts.train_from = (counts.train or 0) + n, directory
        if not validation and facts.validation_fold is not None and not fold_files:
            folds = sorted({f for f in map(fold_of, matched) if f is not None})
            tally.add("train.validation-fold-missing", f"validation_fold {facts.validation_fold} has no "
                      f"'fold-{facts.validation_fold:03d}-of-' shard among the {len(matched)} matched files "
                      f"(folds present: {folds or 'none'})", file=facts.file)
    return counts


def check_image_root(facts: SpecFacts, image_dir_name: str | None, tally: Tally) -> None:
    """`image_directory_path` must name the KITTI root, not the image folder inside it."""
    names = {n for n in (image_dir_name, "image_2", "images") if n}
    for p in facts.path_fields:
        if p.field.endswith("image_directory_path") and os.path.basename(p.value.rstrip("/")) in names:
            tally.add("train.image-dir-not-root", f"{p.field} is {p.value!r}, an image folder; TAO appends "
                      f"<image_dir_name>/<stem> to it, so point it at its parent", file=facts.file, line=p.line)


def check_training(facts: SpecFacts, frames: FrameCounts, tally: Tally, *, gpus: int = 1) -> None:
    if facts.kind != "train":
        return
    f = facts.file
    if facts.validation_fold is None and not facts.has_validation_data_source:
        tally.add("train.no-validation-data", "the spec has neither validation_fold nor validation_data_source "
                  "and validation_period_during_training must be > 0", file=f)
    batch = facts.batch_size_per_gpu
    if frames.validation is not None and batch > 0 and frames.validation < batch:
        _validation_smaller_than_batch(facts, frames, batch, tally)
    if frames.train is not None and batch > 0:
        _logging_points(facts, frames, batch, gpus, tally)
    if facts.visualizer_enabled and facts.num_epochs and facts.infrequent_logging_frequency > facts.num_epochs:
        tally.add("train.infrequent-logging", f"infrequent_logging_frequency {facts.infrequent_logging_frequency} "
                  f"> num_epochs {facts.num_epochs}", file=f)


def _logging_points(facts: SpecFacts, frames: FrameCounts, batch: int, gpus: int, tally: Tally) -> None:
    assert frames.train is not None
    steps = math.ceil(math.ceil(frames.train / batch) / max(1, gpus))
    freq = facts.scalar_logging_frequency or DEFAULT_SCALAR_LOGGING_FREQUENCY
    if freq <= steps:
        return
    empty = frames.train_from if frames.train == 0 else None  # shards that hold nothing at all
    what = "records in the training TFRecords" if frames.train_from else "images"
    tally.add("train.logging-frequency", f"scalar_logging_frequency {freq} > {steps} steps per epoch ({frames.train} "
              f"{what}, batch {batch}, {gpus} GPU)", file=empty or facts.file,
              fix=_empty_tfrecords_fix(empty, "training") if empty else None)


def _validation_smaller_than_batch(facts: SpecFacts, frames: FrameCounts, batch: int, tally: Tally) -> None:
    code, n, shards = "train.validation-smaller-than-batch", frames.validation, frames.validation_from
    if shards is None:
        tally.add(code, f"{n} validation images < batch_size_per_gpu {batch}: validation runs 0 batches",
                  file=facts.file)
        return
    which = (f"validation_fold {facts.validation_fold}" if facts.validation_fold is not None
             else "validation_data_source.tfrecords_path")
    if n == 0:
        tally.add(code, f"the validation TFRecords ({which}) hold 0 records: validation runs 0 batches",
                  file=shards, fix=_empty_tfrecords_fix(shards, "validation"))
        return
    tally.add(code, f"{n} validation records in the TFRecords ({which}) < batch_size_per_gpu {batch}: validation "
              "runs 0 batches", file=shards, fix=f"lower batch_size_per_gpu, or convert again with more validation "
              f"images: a larger val_split in the dataset_convert spec or more data, with {shards} emptied so "
              "taoflow runs dataset_convert")


def _empty_tfrecords_fix(folder: str, split: str) -> str:
    return (f"the TFRecord files in {folder} hold no {split} records (a conversion that wrote none, or files that "
            "are not its output): empty the TFRecords location so taoflow runs dataset_convert on the KITTI data "
            "again, or convert it yourself")
