"""`sweep-detectnet-v2`: fan a grid of training runs out to a work pool, then tabulate them.

Each variant is a separate run of a training deployment (`run_deployment`), so a pool with
several workers (or a Kubernetes cluster) trains them in parallel; the sweep only submits,
waits and collects. Variants differ by epochs, by spec values (`spec_overrides`, e.g. the
learning rate) and/or by dataset; each publishes under its own model subfolder.

The training runs' results are read back from their states, so the pool must persist flow
results where the sweep can read them (docs/deploy.md: PREFECT_RESULTS_PERSIST_BY_DEFAULT
and a shared result storage block on clusters).
"""

import asyncio
import itertools
import re
from dataclasses import dataclass
from typing import Annotated, Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment
from prefect.exceptions import ObjectNotFound
from prefect.flow_runs import wait_for_flow_run
from pydantic import BaseModel, ConfigDict, Field

from tasks.errors import ConfigError, LaunchError, Problem
from tasks.job.outcome import JobResult
from tasks.job.request import DataBinding, TrainRequest

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


def tabulate(variants: list[Variant], runs: list[FlowRun], results: list[JobResult | BaseException | None]) -> list[dict]:
    """One row per variant: its settings, the run, and the metrics of its result."""
    rows = []
    for variant, run, result in zip(variants, runs, results):
        row: dict[str, Any] = {"variant": variant.label, **variant.settings, "flow_run": run.name,
                               "state": run.state.name if run.state else "unknown"}
        if isinstance(result, JobResult):
            row |= {"status": result.status, "final_map": result.final_map, "epochs_run": result.epochs_run,
                    "model": result.model_location or result.results_location}
        else:
            row |= {"status": "failed", "final_map": None, "epochs_run": None,
                    "model": _reason(result)}
        rows.append(row)
    return rows


def _reason(error: BaseException | None) -> str:
    if error is None:
        return "no result (the run did not persist one)"
    return getattr(error, "what", None) or f"{type(error).__name__}: {error}"


def _short(path: str) -> str:
    return path.rsplit(".", 1)[-1]


def _slug(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "_", value)[:24]


async def _collect(run: FlowRun, timeout: float) -> tuple[FlowRun, JobResult | BaseException | None]:
    final = await wait_for_flow_run(run.id, timeout=int(timeout))
    try:
        value = await final.state.aresult(raise_on_failure=True) if final.state else None
    except BaseException as exc:  # a failed run's exception is its row's reason, not the sweep's crash
        return final, exc
    return final, JobResult.model_validate(value) if value is not None else None


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
    rows = tabulate(variants, [c[0] for c in collected], [c[1] for c in collected])
    create_table_artifact(rows, key="sweep-results", description=f"{len(rows)} runs of {deployment}")
    failed = [row for row in rows if row["status"] == "failed"]
    if failed:
        raise LaunchError(
            f"{len(failed)} of {len(rows)} sweep runs failed",
            problems=[Problem("sweep-run-failed", f"{row['variant']} ({row['flow_run']}): {row['model']}") for row in failed],
            fix="open the failed runs (table artifact 'sweep-results') for their logs",
        )
    return rows
