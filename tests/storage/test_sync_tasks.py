"""The Prefect wrappers on a real Prefect API: transient faults retried, auth errors not, content cache keys."""

from __future__ import annotations

import threading
import time

import pytest
from prefect import flow, task

from tasks.errors import StorageAuthError, StorageUnreachableError, TransientStorageError
from tasks.storage import StorageAccess
from tasks.storage.sync_tasks import RETRY_PUBLISH, RETRY_TRANSIENT, content_cache_key, sync_down_task, sync_up_task
from tests.storage.helpers import access_for, location_of, nested_tree, read_tree, upload_tree, write_tree

pytestmark = [pytest.mark.services, pytest.mark.slow]


def _run_count(state) -> int:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_task_run(state.state_details.task_run_id).run_count


def test_a_short_storage_outage_is_bridged_by_the_sdk_reconnects(prefect_api, azurite, blob_container, workdir):
    tree = nested_tree(seed=21, files=20)
    upload_tree(blob_container, "data", tree)
    time.sleep(6)  # Azurite persists its metadata every 5 s; the outage below is a hard kill
    location = location_of(azurite, blob_container, "data")

    @flow
    def fetch():
        return sync_down_task(location, str(workdir / "dst"), access=access_for(azurite, retries=0), return_state=True)

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
    # Even with no SDK retries for status/read faults, refused connections are retried for up to
    # connect_budget seconds inside the request: the 3 s outage never reaches the task's retry.
    assert _run_count(state) == 1
    assert read_tree(workdir / "dst") == tree


@pytest.mark.parametrize("options, unreachable_runs", [(RETRY_TRANSIENT, 1), (RETRY_PUBLISH, 3)],
                         ids=["reading", "publishing"])
def test_transient_faults_are_retried_and_an_unreachable_endpoint_only_when_publishing(
        prefect_api, options, unreachable_runs):
    attempts = {"transient": 0, "unreachable": 0}

    @task(**options | {"retry_delay_seconds": [0.1] * 4})
    def flaky(kind: str) -> str:
        attempts[kind] += 1
        if attempts[kind] < 3:
            error = TransientStorageError if kind == "transient" else StorageUnreachableError
            raise error(f"{kind} fault {attempts[kind]}")
        return "done"

    @flow
    def both():
        return flaky("transient", return_state=True), flaky("unreachable", return_state=True)

    transient, unreachable = both()
    assert transient.is_completed() and _run_count(transient) == 3
    assert _run_count(unreachable) == unreachable_runs
    assert unreachable.is_completed() == (unreachable_runs == 3)
    assert sync_down_task.retry_condition_fn is RETRY_TRANSIENT["retry_condition_fn"]
    assert sync_up_task.retry_condition_fn is RETRY_PUBLISH["retry_condition_fn"]


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
