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
    from tasks.config import load_config

    loaded = load_config(config, sets)
    for warning in loaded.warnings:
        err_console.print(f"warning: {warning}", markup=False)
    return loaded


def plan(
    config: Path = typer.Argument(..., help="YAML config: TrainRequest fields or the AzureML component's inputs."),
    set_: list[str] = typer.Option([], "--set", help=SETS_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the plan as JSON."),
) -> None:
    """Everything up to the launch: stage, rewrite and check the spec, validate, print the launch plan."""
    from tasks import job
    from tasks.storage import StorageAccess
    from tasks.workspace import Workspace, stage_input

    request = _load(config, set_).request
    workspace, access = Workspace.default(), StorageAccess(credentials=request.storage_credentials)
    staged = {name: stage_input(name, loc, workspace, access) for name, loc in job.input_locations(request).items()}
    prepared = job.prepare_spec(request, staged)
    reason = job.conversion_reason(request, staged)
    report = job.validate_inputs(request, prepared, staged, check_tfrecords=reason is None)
    if report.to_error() is not None:
        raise report.to_error()
    launch = job.plan_training(request, prepared, staged, workspace.run_dir("plan"), "plan", key=_key_for_plan(request))
    problems = job.base_model_problems(prepared)
    if as_json:
        print_json({
            "inputs": {n: {"location": s.location, "path": str(s.path), "fingerprint": s.fingerprint}
                       for n, s in staged.items()},
            "spec_changes": [str(c) for c in prepared.changes],
            "spec_diff": prepared.diff,
            "validation": report.to_dict(),
            "dataset_convert": reason,
            "launch": launch.to_dict(),
            "problems": [p.to_dict() for p in problems],
        })
        return
    out = out_console
    out.print("[bold]Inputs[/bold]")
    for name, item in staged.items():
        out.print(f"  {name:<22} {item.location}  ->  {item.path}", markup=False)
    out.print("[bold]Spec rewrite[/bold]")
    out.print(prepared.diff.rstrip() or "  (no change)", markup=False, highlight=False)
    out.print(f"[bold]Dataset[/bold]\n  {report.summary()}")
    if reason:
        out.print(f"[bold]dataset_convert[/bold]\n  runs first: {reason}")
    out.print("[bold]Launch plan[/bold]")
    out.print(launch.render(), markup=False)
    for problem in problems:
        err_console.print(f"warning: {problem.render()} (training would stop here)", markup=False)


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
) -> None:
    """Run the training flow on a config file (ephemeral Prefect unless PREFECT_API_URL is set)."""
    _prefect_defaults()
    request = _load(config, set_).request
    from flows.train import train_detectnet_v2

    _report(train_detectnet_v2(request, dry_run=dry_run, strict=strict))


def demo(
    directory: Path = typer.Option(Path("taoflow-demo"), "--dir", help="Where the demo data, config and models go."),
    epochs: int = typer.Option(3, min=1, help="Epochs to train when a GPU runtime is present."),
    image: str = typer.Option(None, help="TAO image (default: the request's default TAO 5 image)."),
) -> None:
    """The main job on the bundled demo data: local files, ephemeral Prefect; without a GPU runtime it
    stops after validation with the launch plan."""
    _prefect_defaults()
    from tasks.demo_data import DEMO_MODEL_FILE, write_demo_config
    from tasks.launch.readiness import docker_gpu_readiness
    from tasks.request import DEFAULT_IMAGE

    config = write_demo_config(directory, epochs=epochs, image=image)
    err_console.print(f"demo job: {config} (64 generated images, 960x544, 3 shape classes)", markup=False)
    readiness = docker_gpu_readiness(image or DEFAULT_IMAGE)
    model = directory / "pretrained" / "resnet18" / DEMO_MODEL_FILE
    why = None if readiness.ready else readiness.reason
    if why is None and not model.is_file():
        why = f"no pretrained model at {model} (download NVIDIA's pretrained_detectnet_v2:resnet18 from NGC)"
    request = _load(config, []).request
    from flows.train import train_detectnet_v2

    result = train_detectnet_v2(request, dry_run=why is not None)
    _report(result)
    if why:
        err_console.print(f"[bold]Stopped before training:[/bold] {why}.", highlight=False)


def _report(result) -> None:
    if result.launch_plan:
        out_console.print("[bold]Launch plan[/bold]")
        out_console.print(result.launch_plan, markup=False)
    out_console.print(f"status: {result.status}" + (f" - {result.note}" if result.note else ""), markup=False)
    for note in result.notes:
        out_console.print(f"note: {note}", markup=False)
    if result.model_location:
        out_console.print(f"model: {result.model_location}", markup=False)
    if result.final_map is not None:
        out_console.print(f"final mAP: {result.final_map:.2f} %")


def register(app: typer.Typer) -> None:
    """Add run, plan and demo to the root app."""
    app.command()(run)
    app.command()(plan)
    app.command()(demo)
