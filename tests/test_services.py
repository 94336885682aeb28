"""The real services every other test relies on answer: Azurite, and the Prefect API.

(dockerd running the stand-in TAO image is proven in tests/launch/.)
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.services


def test_azurite_put_list_get(blob_container):
    blob_container.upload_blob("dir/a.txt", b"hello azurite")
    blob_container.upload_blob("dir/b.bin", bytes(range(256)) * 10)
    names = sorted(b.name for b in blob_container.list_blobs(name_starts_with="dir/"))
    assert names == ["dir/a.txt", "dir/b.bin"]
    assert blob_container.download_blob("dir/a.txt").readall() == b"hello azurite"
    assert blob_container.get_blob_client("dir/b.bin").get_blob_properties().size == 2560


def test_prefect_flow_run_recorded_and_read_back(prefect_api):
    from prefect import flow, task
    from prefect.client.orchestration import get_client

    @task
    def double(x: int) -> int:
        return 2 * x

    @flow(name="taoflow-smoke")
    def smoke(x: int) -> int:
        return double(x)

    state = smoke(21, return_state=True)
    assert state.is_completed() and state.result() == 42
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(state.state_details.flow_run_id)
        assert run.name and run.state.is_completed()
        assert run.parameters == {"x": 21}
        flow_obj = client.read_flow(run.flow_id)
        assert flow_obj.name == "taoflow-smoke"
