"""`sweep-detectnet-v2`: fan a grid of training runs out to a work pool, then tabulate them.

Each variant is a separate run of a training deployment (`run_deployment`), so a pool with
several workers (or a Kubernetes cluster) trains them in parallel; the sweep only submits,
waits and collects: it starts no container and holds no GPU, each variant books its own in its
training run. Variants differ by epochs, by spec values (`spec_overrides`, e.g. the learning rate)
and/or by dataset; each publishes under its own model subfolder.

The table scores each variant on what promotion decides on: the held-out evaluation mAP of the
model card its run published (found in the registry by the run's id), with training's last
validation mAP beside it (`tasks/registry/sweep_table.py`). A run that did not complete fails the
sweep, after the table is written; a completed run whose card and result cannot be read says so
in its row.
"""

import asyncio
import itertools
import re
from dataclasses import dataclass, replace
from typing import Annotated, Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.client.schemas.objects import FlowRun, State
from prefect.deployments import run_deployment
from prefect.exceptions import FlowRunWaitTimeout, MissingResult, ObjectNotFound
from prefect.flow_runs import wait_for_flow_run
from prefect.utilities.urls import url_for
from pydantic import BaseModel, ConfigDict, Field

from tasks.errors import ConfigError, LaunchError, Problem, TaoflowError
from tasks.job.outcome import JobResult
from tasks.job.request import DataBinding, TrainRequest
from tasks.registry import ModelCard, app_location
from tasks.registry.registry_tasks import cards_of_runs_task
from tasks.registry.sweep_table import RunSummary, failed_rows, sweep_row
from tasks.storage import StorageAccess, parse_location

#: More runs than this is more likely a typo in a grid than a plan.
MAX_VARIANTS = 64


class SweepDataset(BaseModel):
    """One dataset of a sweep: its KITTI data and where its TFRecords are (or will be converted to)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Short name used in the model subfolder and the table.", pattern=r"^[A-Za-z0-9._-]+$")
    training_data: str = Field(description="Location of the KITTI training data.", min_length=1)
    training_tfrecords: str = Field(description="Location of its training TFRecords.", min_length=1)


@dataclass(frozen=True)
class Variant:
    """One training run of the sweep: what differs from the base request, and the request itself."""

    label: str
    settings: dict[str, str]
    request: TrainRequest


def plan_sweep(
    base: TrainRequest,
    num_epochs: list[int] | None = None,
    spec_grid: dict[str, list[str]] | None = None,
    datasets: list[SweepDataset] | None = None,
) -> list[Variant]:
    """The cartesian product of the axes given; an empty axis keeps the base request's value."""
    if base.key is not None:
        # Deployment parameters are stored and shown in the UI: a plain key would leak there.
        raise ConfigError(
            "the sweep's base request carries a plain key",
            fix="store the key in a Prefect Secret block and set key_block instead of key",
        )
    spec_grid = spec_grid or {}
    empty = [path for path, values in spec_grid.items() if not values]
    if empty or any(e < 1 for e in num_epochs or []):
        raise ConfigError(
            "the sweep grid has an empty axis or an epoch count below 1",
            where=", ".join(empty) or "num_epochs",
            fix="give every spec_grid entry at least one value and every epoch count >= 1",
        )
    axes: list[list[tuple[str, Any]]] = [[("num_epochs", e) for e in num_epochs or []]]
    axes += [[(path, str(v)) for v in values] for path, values in spec_grid.items()]
    axes.append([("dataset", d) for d in datasets or []])
    axes = [axis for axis in axes if axis]
    combinations = list(itertools.product(*axes))
    if len(combinations) > MAX_VARIANTS:
        raise ConfigError(
            f"the sweep has {len(combinations)} variants, more than {MAX_VARIANTS}",
            fix="narrow the grid, or run several sweeps",
        )
    return [_variant(base, number, dict(combo)) for number, combo in enumerate(combinations, start=1)]


def _variant(base: TrainRequest, number: int, chosen: dict[str, Any]) -> Variant:
    overrides = dict(base.spec_overrides)
    update: dict[str, Any] = {}
    settings: dict[str, str] = {}
    for name, value in chosen.items():
        if name == "num_epochs":
            update["num_epochs"] = value
            settings["epochs"] = str(value)
        elif name == "dataset":
            update["training_data"] = DataBinding(location=value.training_data,
                                                  spec_reference=base.training_data.spec_reference)
            update["training_tfrecords"] = DataBinding(location=value.training_tfrecords,
                                                       spec_reference=base.training_tfrecords.spec_reference)
            settings["dataset"] = value.name
        else:
            overrides[name] = value
            settings[_short(name)] = value
    label = f"{number:02d}-" + "-".join(_slug(v) for v in settings.values()) if settings else f"{number:02d}"
    update["spec_overrides"] = overrides
    update["model_subfolder"] = f"{base.model_subfolder}-sweep-{label}"
    request = TrainRequest.model_validate(base.model_dump() | update)
    return Variant(label=label, settings=settings, request=request)


def _short(path: str) -> str:
    return path.rsplit(".", 1)[-1]


def _slug(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "_", value)[:24]


async def _collect(run: FlowRun, timeout: float) -> RunSummary:
    """Wait for one variant's run; its result, or why there is none (never the sweep's crash)."""
    try:
        final = await wait_for_flow_run(run.id, timeout=int(timeout))
    except FlowRunWaitTimeout:
        return RunSummary(name=run.name, run_id=str(run.id), state="not finished", completed=False,
                          link=url_for(run), reason=f"still running after {timeout:.0f} s")
    state = final.state
    known = dict(name=final.name, run_id=str(final.id), state=state.name if state else "unknown",
                 completed=bool(state and state.is_completed()), link=url_for(final))
    if state is None:
        return RunSummary(**known)
    try:
        value = await state.aresult(raise_on_failure=True)
    except Exception as exc:  # a failed run's exception is its row's reason
        return RunSummary(**known, reason=_reason(exc, state))
    return RunSummary(**known, result=JobResult.model_validate(value) if value is not None else None)


def _reason(error: Exception, state: State) -> str:
    if isinstance(error, TaoflowError):
        return error.what
    if isinstance(error, MissingResult):
        # Not persisted: a failed run still says why in its state message.
        return state.message if not state.is_completed() and state.message else "its result was not persisted"
    return f"{type(error).__name__}: {error}"


def _cards(base: TrainRequest, runs: list[RunSummary], dry_run: bool) -> tuple[dict[str, ModelCard], str | None]:
    """The cards the completed runs published, by run id; and why the registry could not be read."""
    completed = [run.run_id for run in runs if run.completed]
    if dry_run or not completed:
        return {}, None
    app = app_location(base.output, base.model_app_name)
    try:
        return cards_of_runs_task(app, completed, StorageAccess(credentials=base.storage_credentials)), None
    except TaoflowError as exc:
        get_run_logger().warning("the registry %s could not be read: %s", parse_location(app).display, exc.what)
        return {}, f"the registry could not be read: {exc.what}"


@flow(name="sweep-detectnet-v2", description="Parallel DetectNet_v2 training runs over a grid; one metrics table.")
def sweep_detectnet_v2(
    base: TrainRequest,
    num_epochs: Annotated[list[int], Field(description="Epoch counts to try; empty: the base request's.")] = [],
    spec_grid: Annotated[
        dict[str, list[str]],
        Field(description="Spec field path -> values to try, e.g. "
              "training_config.learning_rate.soft_start_annealing_schedule.max_learning_rate: ['5e-4', '1e-3']."),
    ] = {},
    datasets: Annotated[list[SweepDataset], Field(description="Datasets to train on; empty: the base request's.")] = [],
    deployment: Annotated[str, Field(description="FLOW/DEPLOYMENT that trains one variant.")] = (
        "train-detectnet-v2/retrain-detectnet-v2"
    ),
    dry_run: Annotated[bool, Field(description="Each run stops after validation (checks the whole grid cheaply).")] = False,
    timeout_seconds: Annotated[float, Field(gt=0, description="How long to wait for all runs.")] = 7 * 24 * 3600.0,
) -> list[dict]:
    """Submit every variant as a run of `deployment`, wait for all, publish one table artifact."""
    logger = get_run_logger()
    variants = plan_sweep(base, num_epochs, spec_grid, datasets)
    try:
        runs = [
            run_deployment(
                deployment,
                parameters={"request": v.request.model_dump(mode="json"), "dry_run": dry_run},
                flow_run_name=f"sweep-{v.label}",
                timeout=0,  # submit only: the runs train in parallel on the pool
            )
            for v in variants
        ]
    except ObjectNotFound:
        raise ConfigError(
            f"the training deployment {deployment!r} does not exist",
            where="deployment",
            fix="give FLOW/DEPLOYMENT as `prefect deployment ls` shows it, e.g. train-detectnet-v2/retrain-detectnet-v2",
        ) from None
    logger.info("submitted %d runs of %s", len(runs), deployment)

    async def collect_all():
        return await asyncio.gather(*(_collect(run, timeout_seconds) for run in runs))

    collected = asyncio.run(collect_all())
    cards, unreadable = _cards(base, collected, dry_run)
    registry = parse_location(app_location(base.output, base.model_app_name)).display
    if unreadable:
        collected = [replace(run, reason=run.reason or unreadable) for run in collected]
    rows = [sweep_row(v.label, v.settings, run, cards.get(run.run_id), registry) for v, run in zip(variants, collected)]
    create_table_artifact(rows, key="sweep-results", description=f"{len(rows)} runs of {deployment}")
    failed = failed_rows(rows)
    if failed:
        raise LaunchError(
            f"{len(failed)} of {len(rows)} sweep runs failed",
            problems=[Problem("sweep-run-failed", f"{row['variant']} ({row['flow_run']}, {row['state']}): "
                                                  f"{row['note']}")
                      for row in failed],
            fix="open the failed runs (table artifact 'sweep-results' links them) for their logs",
        )
    return rows
