"""The Prefect wrappers on a real Prefect API: transient faults retried, auth errors not, content cache keys."""

from __future__ import annotations

import threading
import time

import pytest
from prefect import flow, task

from tasks.errors import StorageAuthError
from tasks.storage import StorageAccess
from tasks.storage.task import content_cache_key, sync_down_task, sync_up_task
from tests.storage.helpers import access_for, location_of, nested_tree, read_tree, upload_tree, write_tree

pytestmark = [pytest.mark.services, pytest.mark.slow]


def _run_count(state) -> int:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_task_run(state.state_details.task_run_id).run_count


def test_a_storage_outage_is_retried_until_the_sync_completes(prefect_api, azurite, blob_container, workdir):
    tree = nested_tree(seed=21, files=20)
    upload_tree(blob_container, "data", tree)
    time.sleep(6)  # Azurite persists its metadata every 5 s; the outage below is a hard kill
    location = location_of(azurite, blob_container, "data")
    quick = sync_down_task.with_options(retry_delay_seconds=[2, 2, 2, 2, 2])

    @flow
    def fetch():
        return quick(location, str(workdir / "dst"), access=access_for(azurite, retries=0), return_state=True)

    azurite.stop()
    restart = threading.Timer(3.0, azurite.start)
    restart.start()
    try:
        state = fetch()
    finally:
        restart.join()
        if azurite.process is None:
            azurite.start()
    assert state.is_completed()
    assert _run_count(state) >= 2, "the first attempt met the outage and was retried"
    assert read_tree(workdir / "dst") == tree


def test_an_auth_error_is_not_retried(prefect_api, azurite, blob_container, workdir):
    wrong = StorageAccess(connection_string=azurite.connection_string.replace("AccountKey=Eby8", "AccountKey=AAAA"))
    write_tree(workdir / "res", {"a.txt": b"a"})

    @flow
    def publish():
        return sync_up_task(str(workdir / "res"), location_of(azurite, blob_container, "r"), access=wrong,
                            return_state=True)

    state = publish(return_state=True)
    assert state.is_failed()
    inner = state.result(raise_on_failure=False)
    with pytest.raises(StorageAuthError):
        inner.result()
    assert _run_count(inner) == 1


def test_content_cache_key_reuses_results_until_the_data_changes(prefect_api, azurite, blob_container):
    upload_tree(blob_container, "d", {"x.txt": b"1"})
    location = location_of(azurite, blob_container, "d")
    access = access_for(azurite)
    calls = []

    @task(cache_key_fn=content_cache_key("location", access=access), persist_result=True)
    def count_files(location: str) -> int:
        calls.append(location)
        return len(calls)

    @flow
    def twice():
        return count_files(location), count_files(location)

    assert twice() == (1, 1)
    blob_container.upload_blob("d/x.txt", b"2", overwrite=True)
    assert twice() == (2, 2)
