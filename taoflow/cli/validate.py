"""`taoflow validate`: pre-flight check of a KITTI dataset against a spec, before any GPU starts.

The dataset may be a local folder or a blob location, validated where it lies (image headers and
label files read with HTTP ranges; nothing is downloaded)."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import typer

from taoflow.cli.output import err_console, is_terminal, out_console, print_json
from tasks.errors import ConfigError


def _load_facts(spec: Path, kind: str):
    # imported here so `taoflow --help` does not pay for the spec engine
    from tasks.spec import extract_facts, parse_spec

    try:
        text = spec.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the spec: {exc.strerror}", where=str(spec),
                          fix="pass the path of a DetectNet_v2 experiment spec with --spec") from None
    return extract_facts(parse_spec(text, file=str(spec), kind=kind))


@contextmanager
def _progress(enabled: bool) -> Iterator:
    """A rich progress bar on a terminal; nothing in pipes and logs (the summary line says it all)."""
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("validating"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=err_console, transient=True) as bar:
        task = bar.add_task("pairs", total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def validate_command(
    spec: Path = typer.Option(..., "--spec", help="The DetectNet_v2 spec the data will be trained with."),
    data: str = typer.Option(..., "--data", help="The KITTI root: the folder holding the image and label folders; a "
                             "local path or an az://, https://...blob..., abfss:// or azureml:// location."),
    images: Optional[str] = typer.Option(None, "--images", help="Image folder under --data (default: the spec's "
                                         "image_dir_name, image_2, images)."),
    labels: Optional[str] = typer.Option(None, "--labels", help="Label folder under --data (default: label_2, labels)."),
    validation_data: Optional[str] = typer.Option(None, "--validation-data",
                                                  help="KITTI root of a separate validation set (a path or location)."),
    tfrecords: Optional[Path] = typer.Option(None, "--tfrecords", help="Local folder of the training TFRecord shards."),
    validation_tfrecords: Optional[Path] = typer.Option(None, "--validation-tfrecords",
                                                        help="Local folder of the validation TFRecord shards."),
    kind: str = typer.Option("train", "--kind", help="Spec kind: train or dataset_convert."),
    gpus: int = typer.Option(1, "--gpus", min=1, help="GPUs the job will use (for the steps-per-epoch check)."),
    workers: int = typer.Option(2, "--workers", min=1, help="Processes reading files."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON on stdout."),
    deep: bool = typer.Option(False, "--deep", help="Decode every image fully (slow; finds damaged pixel data)."),
    strict: bool = typer.Option(False, "--strict", help="Fail on warnings too."),
    credentials: Optional[str] = typer.Option(
        None, "--credentials", "-c", metavar="BLOCK",
        help="Name of a Prefect AzureBlobStorageCredentials block for blob locations (default: env "
        "AZURE_STORAGE_CONNECTION_STRING)."),
) -> None:
    """Check images, KITTI labels and the spec's constraints; exit 1 on errors (or warnings with --strict)."""
    from tasks.dataset import DatasetValidation, validate_dataset
    from tasks.storage import StorageAccess

    if kind not in ("train", "dataset_convert"):
        raise ConfigError(f"--kind is {kind!r}", fix="use --kind train or --kind dataset_convert")
    facts = _load_facts(spec, kind)
    with _progress(is_terminal() and not as_json) as progress:
        job = DatasetValidation(facts, data, images=images, labels=labels, deep=deep, strict=strict, workers=workers,
                                validation_data=validation_data, tfrecords=tfrecords,
                                validation_tfrecords=validation_tfrecords, gpus=gpus,
                                access=StorageAccess(credentials=credentials))
        report = validate_dataset(job, progress)
    if as_json:
        print_json(report.to_dict())
    else:
        for code, items in report.examples.items():
            for p in items:
                out_console.print(p.render(), markup=False)
            hidden = report.counts[code] - len(items)
            if hidden > 0:
                out_console.print(f"  ... {hidden} more {code}", markup=False)
        out_console.print(report.summary(), markup=False)
        if report.reads:
            out_console.print(f"read in place: {report.reads['requests']} ranged reads, "
                              f"{report.reads['bytes']:,} bytes", markup=False)
    if not report.ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command("validate")(validate_command)
