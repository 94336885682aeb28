"""The polling fallback against real Azurite and the real Prefect API."""

from __future__ import annotations

import uuid

import pytest

from flows.watch import BlobWatchState, watch_blob_datasets
from tests.events.conftest import recorded_events

pytestmark = pytest.mark.services


def _upload(container, prefix: str, files: int, marker: bool) -> None:
    for i in range(files):
        container.upload_blob(f"{prefix}/images/{i:04d}.png", b"x" * (i + 1))
    if marker:
        container.upload_blob(f"{prefix}/_READY", b"")


def test_dataset_with_marker_is_announced_once(azurite_env, blob_container, prefect_api_url):
    container = blob_container.container_name
    state_block = f"watch-{uuid.uuid4().hex[:8]}"
    kwargs = dict(rules=[f"{container}/incoming/*"], state_block=state_block, quiet_seconds=3600)
    _upload(blob_container, "incoming/ds-a", 12, marker=False)
    blob_container.upload_blob("stray.txt", b"outside any dataset")

    first = watch_blob_datasets(**kwargs)
    assert first["changed"] == 12 and first["emitted"] == [] and first["pending"] == 1

    blob_container.upload_blob("incoming/ds-a/_READY", b"")
    second = watch_blob_datasets(**kwargs)
    resource = f"azure.blob.devstoreaccount1/{container}/incoming/ds-a"
    assert second["changed"] == 1 and second["emitted"] == [resource]

    third = watch_blob_datasets(**kwargs)  # nothing new: no event
    assert third["changed"] == 0 and third["emitted"] == [] and third["pending"] == 0

    found = recorded_events(prefect_api_url, f"azure.blob.devstoreaccount1/{container}/", expect=1)
    assert len(found) == 1
    event = found[0]
    assert event["payload"]["blob_count"] == 13 and event["payload"]["source"] == "poll"
    assert event["resource"]["taoflow.dataset.location"] == f"{blob_container.url}/incoming/ds-a/"
    state = BlobWatchState.load(state_block).state
    assert len(state["etags"][container]) == 13 and state["debouncer"]["counters"]["emitted"] == 1


def test_quiet_window_without_marker(azurite_env, blob_container, prefect_api_url):
    container = blob_container.container_name
    kwargs = dict(rules=[f"{container}/*"], state_block=f"watch-{uuid.uuid4().hex[:8]}", quiet_seconds=0)
    _upload(blob_container, "ds-b", 3, marker=False)
    _upload(blob_container, "ds-c", 2, marker=False)
    summary = watch_blob_datasets(**kwargs)
    assert sorted(summary["emitted"]) == [
        f"azure.blob.devstoreaccount1/{container}/ds-b",
        f"azure.blob.devstoreaccount1/{container}/ds-c",
    ]
    assert watch_blob_datasets(**kwargs)["emitted"] == []


def test_missing_credentials_is_a_clear_error(monkeypatch, prefect_api_url):
    from tasks.errors import StorageAuthError

    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)
    with pytest.raises(StorageAuthError, match="AZURE_STORAGE_CONNECTION_STRING"):
        watch_blob_datasets(state_block=f"watch-{uuid.uuid4().hex[:8]}")


def test_a_missing_credentials_block_is_one_config_error_naming_it(prefect_api_url):
    from tasks.errors import ConfigError

    with pytest.raises(ConfigError) as caught:
        watch_blob_datasets(state_block=f"watch-{uuid.uuid4().hex[:8]}", credentials_block="no-such-blob-block")
    assert "'no-such-blob-block'" in caught.value.what
    assert "prefect block create azure-blob-storage-credentials" in caught.value.fix
