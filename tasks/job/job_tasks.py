"""Thin Prefect tasks over `tasks.job.preflight` and `tasks.job.workspace` for the training flow.

Caching is keyed on *content* (blob etags / MD5s, local sizes and change tokens) and on the
inputs that shape a step, never on timestamps of runs: a re-run with unchanged data transfers
nothing when staging (the sync is incremental; the stage task itself is not cached, so its key
never contacts storage) and reuses the validation result, keyed by the fingerprints the staging
computed; any change to the data, spec or options recomputes them.
Retries are for transient faults only (`is_transient`); user errors fail at once.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tasks.dataset import ValidationReport
from tasks.errors import ConfigError
from tasks.job.inplace import validate_in_place
from tasks.job.preflight import PreparedSpec, prepare_spec, validate_inputs
from tasks.job.request import TrainRequest
from tasks.job.workspace import StagedInput, Workspace, stage_input
from tasks.progress import staging_reporter
from tasks.redact import remember_secret
from tasks.storage import StorageAccess
from tasks.storage.sync_tasks import RETRY_TRANSIENT

#: Bump when a change to staging or validation logic must invalidate cached results.
CACHE_VERSION = "2"


def _digest(*parts: object) -> str:
    h = hashlib.sha256(CACHE_VERSION.encode())
    for part in parts:
        h.update(b"\0" + str(part).encode())
    return h.hexdigest()


@task(
    name="stage-input",
    # No cache key: a content key would list the location again before every attempt (and a
    # failing listing would be logged as a cache-key traceback). Staging is incremental instead:
    # an unchanged input costs one listing and transfers nothing; its fingerprint, computed from
    # that listing, keys the validation cache below.
    task_run_name="stage-{name}",
    **RETRY_TRANSIENT,
)
def stage_input_task(name: str, location: str, workspace: Workspace, access: StorageAccess | None = None) -> StagedInput:
    """Make one input local (remote: incremental sync into the cache; local: in place)."""
    logger = get_run_logger()
    staged = stage_input(name, location, workspace, access, notice=logger.warning, on_progress=staging_reporter(name))
    logger.info(
        "%s: %s -> %s (%s)", name, staged.location, staged.path,
        f"{staged.bytes_transferred / 1e6:.1f} MB transferred" if staged.remote else "used in place",
    )
    return staged


def stage_all(locations: dict[str, str], workspace: Workspace, access: StorageAccess | None) -> dict[str, StagedInput]:
    """Stage every input in parallel."""
    futures = {name: stage_input_task.submit(name, loc, workspace, access) for name, loc in locations.items()}
    return {name: f.result() for name, f in futures.items()}


@task(name="prepare-spec", cache_policy=NO_CACHE, retries=0)
def prepare_spec_task(request: TrainRequest, staged: dict[str, StagedInput]) -> PreparedSpec:
    """Rewrite the spec onto the container mounts and check it (SpecError with file:line on problems)."""
    prepared = prepare_spec(request, staged)
    logger = get_run_logger()
    for change in prepared.changes:
        logger.info("spec line %s: %s", getattr(change, "line", "?"), getattr(change, "field", change))
    for warning in prepared.warnings:
        logger.warning(warning.render())
    return prepared


def _validation_key(context, parameters: dict) -> str:
    staged: dict[str, StagedInput] = parameters["staged"]
    prepared: PreparedSpec = parameters["prepared"]
    return _digest(
        "validate",
        sorted((name, s.fingerprint) for name, s in staged.items()),
        json.dumps(asdict(prepared.host_facts), sort_keys=True, default=str),
        parameters.get("check_tfrecords"),
        parameters.get("strict"),
        parameters["request"].num_gpus,
    )


@task(name="validate-dataset", cache_key_fn=_validation_key, persist_result=True, retries=0)
def validate_inputs_task(
    request: TrainRequest,
    prepared: PreparedSpec,
    staged: dict[str, StagedInput],
    check_tfrecords: bool = True,
    strict: bool = False,
) -> ValidationReport:
    """The dataset validator; returns the report (the flow fails on its errors, cached or not)."""
    report = validate_inputs(request, prepared, staged, check_tfrecords=check_tfrecords, strict=strict)
    get_run_logger().info(report.summary())
    return report


@task(
    name="validate-in-place",
    # Not cached: its key would be the data's listing, which is most of what it costs beside the
    # header reads; the validation of the staged copy after it is cached by content.
    **RETRY_TRANSIENT,
)
def validate_in_place_task(request: TrainRequest, spec: StagedInput, access: StorageAccess | None = None,
                           strict: bool = False) -> ValidationReport | None:
    """The dataset validator on blob data where it lies, before staging (tasks.job.inplace)."""
    report = validate_in_place(request, spec, access, strict=strict)
    if report is not None:
        reads = report.reads
        get_run_logger().info("%s (in place: %d ranged reads, %.1f MB)", report.summary(), reads.get("requests", 0),
                              reads.get("bytes", 0) / 1e6)
    return report


def resolve_key(request: TrainRequest) -> str | None:
    """The TAO key from the request or its Prefect Secret block; never logged.

    Whatever its source, the key is remembered by the process-wide scrubber, so no log line or
    error text of this run can show it.
    """
    if request.key is not None:
        key = request.key.get_secret_value()
    elif request.key_block:
        from prefect.blocks.system import Secret

        try:
            key = str(Secret.load(request.key_block).get())
        except ValueError as exc:
            raise ConfigError(
                f"the Secret block {request.key_block!r} holding the TAO key cannot be loaded: {exc}",
                fix=f"create it in the Prefect UI (Blocks -> Secret) or with `prefect block create secret`, "
                f"named {request.key_block!r}",
            ) from None
    else:
        return None
    remember_secret(key)
    return key
