"""Will the training job get past its first epoch? Checks from TAO's train.py runtime rules.

Each check runs only when its inputs are known: the frame counts come from TFRecord shards when
their staging directory is given, else from the image folders that were validated.
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
                counts.validation = (counts.validation or 0) + n
            else:
                counts.train = (counts.train or 0) + n
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
        tally.add("train.validation-smaller-than-batch", f"{frames.validation} validation images < "
                  f"batch_size_per_gpu {batch}: validation runs 0 batches", file=f)
    if frames.train and batch > 0:
        steps = math.ceil(math.ceil(frames.train / batch) / max(1, gpus))
        freq = facts.scalar_logging_frequency or DEFAULT_SCALAR_LOGGING_FREQUENCY
        if freq > steps:
            tally.add("train.logging-frequency", f"scalar_logging_frequency {freq} > {steps} steps per epoch "
                      f"({frames.train} images, batch {batch}, {gpus} GPU)", file=f)
    if facts.visualizer_enabled and facts.num_epochs and facts.infrequent_logging_frequency > facts.num_epochs:
        tally.add("train.infrequent-logging", f"infrequent_logging_frequency {facts.infrequent_logging_frequency} "
                  f"> num_epochs {facts.num_epochs}", file=f)
