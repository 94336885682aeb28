"""`watch-blob-datasets`: the polling fallback for storage without Event Grid (and for Azurite).

Deploy it on an interval schedule; each run lists the rules' prefixes, diffs them against the
last run's listing and emits the same `taoflow.dataset.ready` event the Event Grid bridge
does, under the same quiet-window and marker rules. The state between runs (etags seen and
pending windows) lives in a `BlobWatchState` block: a Variable holds at most 5,000 characters,
too little for the etags of a real dataset.
"""

import time
from typing import Annotated

from prefect import flow, get_run_logger, task
from prefect.blocks.core import Block
from prefect.cache_policies import NO_CACHE
from prefect.exceptions import ObjectNotFound
from prefect.settings import get_current_settings
from pydantic import Field

from tasks.errors import ConfigError, retry_if_transient
from tasks.events import DebounceSettings, PrefectEventsEmitter, parse_rules
from tasks.events.polling import PollState, poll_once, service_client_from_block, service_client_from_env
from tasks.events.rules import DEFAULT_RULES


class BlobWatchState(Block):
    """What `watch-blob-datasets` remembers between runs: etags seen and pending dataset windows."""

    _block_type_name = "Taoflow Blob Watch State"
    _description = "Polling state of taoflow's watch-blob-datasets flow (etags seen, pending windows)."

    state: dict = Field(default_factory=dict, description="PollState.to_dict(); edit only to reset (set to {}).")


def _load_state(name: str) -> PollState:
    try:
        return PollState.from_dict(BlobWatchState.load(name).state)
    except (ObjectNotFound, ValueError):
        return PollState()


def _service(credentials_block: str | None):
    if credentials_block:
        return service_client_from_block(_credentials(credentials_block))
    return service_client_from_env()


def _credentials(name: str):
    """The storage credentials block, or one ConfigError naming it and how to create it."""
    from prefect_azure import AzureBlobStorageCredentials

    try:
        return AzureBlobStorageCredentials.load(name)
    except (ValueError, ObjectNotFound):
        raise ConfigError(
            f"the AzureBlobStorageCredentials block {name!r} does not exist on this Prefect server",
            where=f"watch-blob-datasets parameter credentials_block={name!r}",
            fix=f"create it with `prefect block create azure-blob-storage-credentials` (name it {name}; or in "
            f"Python: AzureBlobStorageCredentials(connection_string=...).save({name!r})), then resume the "
            "schedule: `prefect deployment schedule resume watch-blob-datasets/watch-blob-datasets <id>`",
        ) from None


def _emitter() -> PrefectEventsEmitter:
    api = get_current_settings().api
    return PrefectEventsEmitter(
        api.url or "",
        api_key=api.key.get_secret_value() if api.key else None,
        auth_string=api.auth_string.get_secret_value() if api.auth_string else None,
    )



@task(retries=3, retry_delay_seconds=[5, 20, 60], retry_condition_fn=retry_if_transient, cache_policy=NO_CACHE)
def poll_blob_datasets(settings: DebounceSettings, state_block: str, credentials_block: str | None) -> dict:
    """One poll; the state is saved even when the emit failed, so the pending windows are kept."""
    state = _load_state(state_block)
    emitter = _emitter()
    try:
        result = poll_once(_service(credentials_block), settings, state, emitter, time.time())
    finally:
        emitter.close()
    BlobWatchState(state=state.to_dict()).save(state_block, overwrite=True)
    if result.flush.error is not None:
        raise result.flush.error
    return {
        "listed": result.listed,
        "changed": result.changed,
        **result.counts,
        "emitted": [e["resource"]["prefect.resource.id"] for e in result.flush.emitted],
        "pending": len(state.store.windows),
    }


@flow(name="watch-blob-datasets", log_prints=False)
def watch_blob_datasets(
    rules: Annotated[list[str], Field(description="CONTAINER/SEGMENT/... dataset roots, one glob per folder level.")] = list(DEFAULT_RULES),
    quiet_seconds: Annotated[float, Field(ge=0, description="A dataset is ready after this long without new blobs.")] = 300.0,
    marker: Annotated[str, Field(min_length=1, description="Blob at a dataset's root that makes it ready at once.")] = "_READY",
    state_block: Annotated[str, Field(description="Name of the BlobWatchState block holding the state.")] = "taoflow-watch-state",
    credentials_block: Annotated[
        str | None, Field(description="AzureBlobStorageCredentials block; unset = $AZURE_STORAGE_CONNECTION_STRING.")
    ] = None,
) -> dict:
    """List the configured prefixes and emit `taoflow.dataset.ready` for each dataset that became ready."""
    settings = DebounceSettings(rules=parse_rules(rules), quiet_seconds=quiet_seconds, marker=marker, source="poll")
    summary = poll_blob_datasets(settings, state_block, credentials_block)
    get_run_logger().info(
        "listed %s blobs, %s new or changed; emitted %s; %s windows pending",
        summary["listed"], summary["changed"], summary["emitted"] or "nothing", summary["pending"],
    )
    return summary
