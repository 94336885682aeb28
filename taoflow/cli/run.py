"""`taoflow run`, `taoflow plan` and `taoflow demo`.

`plan` calls the plain functions (no Prefect server, no engine) and answers in seconds; `run`
and `demo` run the Prefect flow (an ephemeral API unless PREFECT_API_URL points at a server).
"""

from __future__ import annotations

import os
from pathlib import Path

import typer

from taoflow.cli.output import err_console, out_console, print_json

SETS_HELP = "Override a config field: FIELD=VALUE, dotted for nested fields (repeatable)."


def _prefect_defaults() -> None:
    # A fresh PREFECT_HOME migrates its database first; the 20 s default start-up time-out is too
    # short for that on a small machine. Users' own settings win.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


def _load(config: Path, sets: list[str]):
    from tasks.job.config import load_config

    loaded = load_config(config, sets)
    for warning in loaded.warnings:
        err_console.print(f"warning: {warning}", markup=False)
    return loaded


def plan(
    config: Path = typer.Argument(..., help="YAML config: TrainRequest fields or the AzureML component's inputs."),
    set_: list[str] = typer.Option([], "--set", help=SETS_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the plan as JSON."),
) -> None:
    """Everything up to the launch: validate blob data where it lies, stage, rewrite and check the spec,
    validate, print the launch plan.

    Exits non-zero when training would stop (a dataset error, a missing base model).
    """
    from tasks.job.inplace import preflight_in_place
    from tasks.job.plans import plan_training
    from tasks.job.preflight import input_locations, run_preflight
    from tasks.job.workspace import Workspace, stage_input
    from tasks.storage import StorageAccess

    request = _load(config, set_).request
    workspace, access = Workspace.default(), StorageAccess(credentials=request.storage_credentials)
    early = preflight_in_place(request, workspace, access)
    if early is not None and early.to_error() is not None:
        raise early.to_error()
    staged = {name: stage_input(name, loc, workspace, access) for name, loc in input_locations(request).items()}
    checked = run_preflight(request, staged)
    if checked.validation.to_error() is not None:
        raise checked.validation.to_error()
    launch = plan_training(request, checked.prepared, staged, workspace.run_dir("plan"), "plan",
                           key=_key_for_plan(request))
    if as_json:
        print_json({
            "inputs": {n: {"location": s.location, "path": str(s.path), "fingerprint": s.fingerprint}
                       for n, s in staged.items()},
            "spec_changes": [c.to_dict() for c in checked.prepared.changes],
            "spec_diff": checked.prepared.diff,
            "validation": checked.validation.to_dict(),
            "dataset_convert": checked.conversion,
            "launch": launch.to_dict(),
            "would_stop": [p.to_dict() for p in checked.would_stop],
        })
    else:
        out = out_console
        out.print("[bold]Inputs[/bold]")
        for name, item in staged.items():
            out.print(f"  {name:<22} {item.location}  ->  {item.path}", markup=False)
        _print_diff(checked.prepared.diff)
        out.print(f"[bold]Dataset[/bold]\n  {checked.validation.summary()}")
        if checked.conversion:
            out.print(f"[bold]dataset_convert[/bold]\n  runs first: {checked.conversion}")
        out.print("[bold]Launch plan[/bold]")
        out.print(launch.render(), markup=False)
    error = checked.error()
    if error is not None:
        error.what = "training would stop before the container starts: " + error.what
        raise error


def _key_for_plan(request) -> str | None:
    # The plan shows where the key goes (redacted); it needs no Secret block lookup for that.
    if request.key is not None:
        return request.key.get_secret_value()
    return "<from Secret block>" if request.key_block else None


def run(
    config: Path = typer.Argument(..., help="YAML config: TrainRequest fields or the AzureML component's inputs."),
    set_: list[str] = typer.Option([], "--set", help=SETS_HELP),
    dry_run: bool = typer.Option(False, "--dry-run", help="Stop after validation with the launch plan."),
    strict: bool = typer.Option(False, "--strict", help="Dataset warnings fail the run."),
    as_json: bool = typer.Option(False, "--json", help="Print the result (JobResult) as JSON on stdout."),
) -> None:
    """Run the training flow on a config file (ephemeral Prefect unless PREFECT_API_URL is set)."""
    _prefect_defaults()
    request = _load(config, set_).request
    from flows.train import train_detectnet_v2
    from taoflow.cli.progress import progress_display

    with progress_display():
        result = train_detectnet_v2(request, dry_run=dry_run, strict=strict)
    if as_json:
        print_json(result.model_dump(mode="json"))
    else:
        _report(result)


#: What the demo needs to train, where it looks for it, and how to get it (not verifiable here:
#: no NGC account or GPU on the machines this project is tested on).
PRETRAINED_HINT = (
    "put NVIDIA's pretrained DetectNet_v2 ResNet-18 there: the file resnet18.hdf5 of the NGC model "
    "nvidia/tao/pretrained_detectnet_v2:resnet18 (`ngc registry model download-version "
    "nvidia/tao/pretrained_detectnet_v2:resnet18`)"
)


def demo(
    directory: Path = typer.Option(Path("taoflow-demo"), "--dir", help="Where the demo data, config and models go."),
    epochs: int = typer.Option(3, min=1, help="Epochs to train when a GPU runtime is present."),
    image: str = typer.Option(None, help="TAO image (default: the request's default TAO 5 image)."),
) -> None:
    """The main job on the bundled demo data: local files, ephemeral Prefect; without a GPU runtime, the
    TAO image or the pretrained model it stops after validation with the launch plan and says why."""
    _prefect_defaults()
    from tasks.job.demo import DEMO_MODEL_FILE, write_demo_config
    from tasks.launch.plan import DEFAULT_IMAGE
    from tasks.launch.readiness import docker_gpu_readiness

    config = write_demo_config(directory, epochs=epochs, image=image)
    err_console.print(f"demo job: {config} (64 generated images, 960x544, 3 shape classes)", markup=False)
    readiness = docker_gpu_readiness(image or DEFAULT_IMAGE)
    model = directory / "pretrained" / "resnet18" / DEMO_MODEL_FILE
    missing = list(readiness.missing)
    if not model.is_file():
        missing.append(f"no pretrained model at {model}: {PRETRAINED_HINT}")
    request = _load(config, []).request
    from flows.train import train_detectnet_v2
    from taoflow.cli.progress import progress_display

    with progress_display():
        result = train_detectnet_v2(request, dry_run=bool(missing))
    # The demo says itself what is missing; the flow's own base-model finding would only repeat it.
    _report(result, explained={"base-model-missing"} if not model.is_file() else set())
    if missing:
        err_console.print("[bold]Stopped before training.[/bold] To train on this machine:", highlight=False)
        for why in missing:
            err_console.print(f"  - {why}", markup=False)


def _print_diff(diff: str) -> None:
    out_console.print("[bold]Spec rewrite[/bold] (only the paths and num_epochs change)")
    out_console.print(diff.rstrip() or "  (no change)", markup=False, highlight=False)


def _report(result, explained: set[str] = frozenset()) -> None:
    if result.spec_diff:
        _print_diff(result.spec_diff)
    if result.launch_plan:
        out_console.print("[bold]Launch plan[/bold]")
        out_console.print(result.launch_plan, markup=False)
    out_console.print(f"status: {result.status}" + (f" - {result.note}" if result.note else ""), markup=False)
    for note in result.notes:
        out_console.print(f"note: {note}", markup=False)
    for finding in result.would_stop:
        if finding["code"] not in explained:
            hint = f" ({finding['hint']})" if finding.get("hint") else ""
            out_console.print(f"training would stop: {finding['message']}{hint}", markup=False)
    if result.model_location:
        out_console.print(f"model: {result.model_location}", markup=False)
    if result.final_map is not None:
        out_console.print(f"final mAP: {result.final_map:.2f} %")


def config_fields_help() -> str:
    """The config file's fields with their descriptions (the TrainRequest form), for --help.

    >>> "num_epochs" in config_fields_help()
    True
    """
    from tasks.job.request import TrainRequest

    lines = ["\b", "Config fields (TrainRequest; the AzureML component's flat input names work too):"]
    for name, field in TrainRequest.model_fields.items():
        lines.append(f"  {name}{'' if field.is_required() else ' (optional)'}: {field.description or ''}")
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    """Add run, plan and demo to the root app."""
    fields = config_fields_help()
    app.command(epilog=fields)(run)
    app.command(epilog=fields)(plan)
    app.command()(demo)
