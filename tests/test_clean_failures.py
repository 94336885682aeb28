"""A user's mistake ends a run as one clean message; a bug keeps its traceback (issue 16, item 2).

Read back through a real Prefect API: the run's state message carries the error (what, where, how
to fix), the run's log holds it once, and no log line holds a Python traceback.
"""

from __future__ import annotations

import pytest
from prefect import flow, task
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
from prefect.logging.handlers import APILogWorker

import flows  # noqa: F401 - installs the log filters, as importing any taoflow flow does
from tasks.errors import ConfigError, retry_if_transient

pytestmark = pytest.mark.services

WHAT = "the Secret block 'tao-key' holding the TAO key cannot be loaded"


@task(retries=2, retry_delay_seconds=0, retry_condition_fn=retry_if_transient)
def load_key():
    raise ConfigError(WHAT, where="request.key_block", fix="create it with `prefect block create secret`")


@flow(name="clean-user-error")
def user_error_flow():
    load_key()


@flow(name="a-real-bug")
def bug_flow():
    return {}["missing"]


def run_logs(flow_run_id) -> list[str]:
    """Every line the run logged: the log worker is drained first, so nothing is still on its way
    (waiting for a last line instead would wait in vain: the filter drops the "Finished in state"
    line of a user's error)."""
    APILogWorker.drain_all(timeout=30)
    with get_client(sync_client=True) as client:
        return [log.message for log in client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))]


def test_a_taoflow_error_is_one_clean_line_and_the_state_message(prefect_api):
    state = user_error_flow(return_state=True)
    assert state.is_failed()
    assert WHAT in state.message and "how to fix" in state.message
    messages = run_logs(state.state_details.flow_run_id)
    assert not any("Traceback" in m for m in messages), messages
    carrying = [m for m in messages if WHAT in m]
    assert len(carrying) == 1, carrying
    assert carrying[0].startswith("Task run failed: request.key_block: " + WHAT)
    assert "how to fix: create it with `prefect block create secret`" in carrying[0]


def test_a_bug_keeps_its_traceback(prefect_api):
    state = bug_flow(return_state=True)
    assert state.is_failed()
    messages = run_logs(state.state_details.flow_run_id)
    assert any("Traceback" in m and "KeyError" in m for m in messages), messages
