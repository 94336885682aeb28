"""Storage that cannot be reached fails fast and once: a closed loopback port and a host name
that does not resolve, for a sync and for the flow's staging on a real Prefect API.

The SDK's own request log (azure.core's HttpLoggingPolicy, one "Request URL" line per attempt)
counts the attempts; the Prefect API says how often the task ran and what it logged. No time
is asserted; the seconds it took are recorded as a figure.
"""

from __future__ import annotations

import logging
import socket
import time

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, LogFilter, LogFilterFlowRunId

from tasks.errors import ConfigError, StorageUnreachableError
from tasks.job.job_tasks import stage_all
from tasks.job.workspace import Workspace
from tasks.storage import StorageAccess, sync_down
from tasks.storage.retry import CONNECT_RETRIES
from tests.fixtures.services import AZURITE_KEY, free_port
from tests.reliability import ledger

pytestmark = pytest.mark.services
NO_SUCH_HOST = "taoflow-no-such-storage.invalid"  # RFC 6761: .invalid never resolves


def access_at(endpoint: str) -> StorageAccess:
    return StorageAccess(connection_string=f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
                                           f"AccountKey={AZURITE_KEY};BlobEndpoint={endpoint}/devstoreaccount1;")


@pytest.fixture
def attempts(caplog):
    """A function returning how many HTTP attempts the SDK made since the test began."""
    caplog.set_level(logging.INFO, logger="azure.core.pipeline.policies.http_logging_policy")
    return lambda: sum(1 for r in caplog.records if r.getMessage().startswith("Request URL"))


def expected_dns_attempts() -> int:
    """One attempt for a name the resolver says does not exist; a resolver that cannot answer
    (EAI_AGAIN, e.g. no DNS server at all) is a connection fault and gets the bounded reconnects."""
    try:
        socket.getaddrinfo(NO_SUCH_HOST, 80)
    except socket.gaierror as exc:
        return 1 if exc.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", -5)) else 1 + CONNECT_RETRIES
    pytest.fail(f"{NO_SUCH_HOST} resolved on this machine")


@pytest.mark.parametrize("case", ["refused", "unresolvable"])
def test_a_sync_to_unreachable_storage_ends_in_one_clear_error(case, attempts, tmp_path):
    # Credentials go over plain http to this machine only: a name elsewhere is https (its lookup fails first).
    endpoint = f"http://127.0.0.1:{free_port()}" if case == "refused" else f"https://{NO_SUCH_HOST}:10000"
    want = 1 + CONNECT_RETRIES if case == "refused" else expected_dns_attempts()
    started = time.monotonic()
    with pytest.raises(StorageUnreachableError) as caught:
        sync_down("az://models/run1", tmp_path / "dest", access=access_at(endpoint))
    seconds = time.monotonic() - started
    error = caught.value
    assert attempts() == want, (attempts(), want)
    assert f"({want} attempt(s) in" in error.what and endpoint in error.what
    assert ("refused" if case == "refused" else "does not resolve") in error.what
    assert not error.transient and error.fix
    assert not any((tmp_path / "dest").iterdir()), "something was written"
    ledger.record("storage-unreachable", trials=1, **{f"{case}_seconds": round(seconds, 1), f"{case}_attempts": want})


def test_staging_from_unreachable_storage_fails_once_without_a_cache_key_traceback(prefect_api, attempts, tmp_path):
    workspace = Workspace(tmp_path / "home")
    cases = {"unreachable": access_at(f"http://127.0.0.1:{free_port()}"),
             "missing block": StorageAccess(credentials="no-such-storage-block")}
    failed_well = 0
    for name, access in cases.items():
        before = attempts()

        @flow(name=f"stage-{name.replace(' ', '-')}")
        def stage():
            return stage_all({"training_data": "az://datasets/kitti/train"}, workspace, access)

        started = time.monotonic()
        state = stage(return_state=True)
        seconds = time.monotonic() - started
        assert state.is_failed()
        run_id = state.state_details.flow_run_id
        time.sleep(2)  # logs reach the API in batches
        with get_client(sync_client=True) as client:
            mine = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id])))
            logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])))
        text = "\n".join(log.message for log in logs)
        assert len(mine) == 1 and mine[0].run_count == 1, [(r.name, r.run_count) for r in mine]
        assert "cache key" not in text.lower(), text
        error = state.result(raise_on_failure=False)
        if name == "unreachable":
            assert isinstance(error, StorageUnreachableError), error
            assert attempts() - before == 1 + CONNECT_RETRIES  # the cache key no longer lists storage first
        else:
            assert isinstance(error, ConfigError) and "'no-such-storage-block'" in str(error), error
            assert attempts() == before
        failed_well += 1
        ledger.record("storage-unreachable", trials=1, **{f"staging_{name.replace(' ', '_')}_seconds": round(seconds, 1)})
    assert failed_well == len(cases)
