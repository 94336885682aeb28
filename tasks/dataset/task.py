"""Prefect edge of the dataset validator: run it, publish the report, fail on errors.

No retries: a bad dataset stays bad until someone fixes the files.
"""

from __future__ import annotations

import os

from prefect import task
from prefect.artifacts import create_markdown_artifact

from tasks.dataset.report import ValidationReport
from tasks.dataset.validate import validate_dataset
from tasks.spec.facts import SpecFacts


@task(name="validate-dataset", retries=0)
def validate_dataset_task(
    facts: SpecFacts,
    data_dir: str | os.PathLike,
    *,
    strict: bool = False,
    deep: bool = False,
    validation_data_dir: str | os.PathLike | None = None,
    tfrecords_dir: str | os.PathLike | None = None,
    validation_tfrecords_dir: str | os.PathLike | None = None,
    gpus: int = 1,
    artifact_key: str = "dataset-validation",
) -> ValidationReport:
    """Validate the staged dataset; the markdown report becomes an artifact; errors raise DatasetError."""
    report = validate_dataset(facts, data_dir, deep=deep, strict=strict, validation_data_dir=validation_data_dir,
                              tfrecords_dir=tfrecords_dir, validation_tfrecords_dir=validation_tfrecords_dir,
                              gpus=gpus)
    create_markdown_artifact(markdown=report.to_markdown(), key=artifact_key, description=report.summary())
    error = report.to_error()
    if error is not None:
        raise error
    return report
