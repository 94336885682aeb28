"""Test session set-up: an isolated Prefect home and the real-service fixtures.

Settings are exported before anything imports Prefect, so every test (and every subprocess
it starts) talks to this session's own ephemeral API and never to a developer's profile.
"""

from __future__ import annotations

import os
import sys
import tempfile

import pytest

from tests.fixtures.offline import offline_env

_SESSION_HOME = tempfile.mkdtemp(prefix="taoflow-test-prefect-")
for _name, _value in {
    "PREFECT_HOME": _SESSION_HOME,
    "PREFECT_PROFILES_PATH": os.path.join(_SESSION_HOME, "profiles.toml"),
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
    "PREFECT_UI_ENABLED": "false",
    # Analytics off, as operators start the server (deployments/offline.env, docs/deploy.md).
    **offline_env(),
}.items():
    os.environ.setdefault(_name, _value)
# A developer's PREFECT_API_URL must not leak into the tests.
os.environ.pop("PREFECT_API_URL", None)

pytest_plugins = [
    "tests.fixtures.services",
    "tests.fixtures.docker_image",
    "tests.fixtures.job_inputs",
]


# --- order -------------------------------------------------------------------------------------


def pytest_collection_modifyitems(config, items):
    """Tests marked `after_the_rest` run last. Such a test waits out a window of wall-clock time
    (it waits only for what is left of it, so it is right in any order); run last, the window has
    passed while the other tests ran, instead of being slept through."""
    items.sort(key=lambda item: item.get_closest_marker("after_the_rest") is not None)


# --- leaving the session -----------------------------------------------------------------------
#
# Prefect drains its log and event workers in an atexit hook with no time limit. When the last
# server a worker talked to is gone, that drain can wait forever, after the summary was printed:
# in CI that is a run that never ends. Under scripts/test (TAOFLOW_HARD_EXIT=1) the process
# drains them with a bound and then exits with pytest's own status.

_FINAL: dict[str, object] = {}


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    _FINAL["session"] = session


def pytest_unconfigure(config):
    if os.environ.get("TAOFLOW_HARD_EXIT") != "1" or "session" not in _FINAL:
        return
    status = int(getattr(_FINAL["session"], "exitstatus", 1))
    try:
        from prefect.events.worker import EventsWorker
        from prefect.logging.handlers import APILogWorker

        EventsWorker.drain_all(timeout=15, at_exit=True)
        APILogWorker.drain_all(timeout=15, at_exit=True)
    except Exception:  # noqa: BLE001 - leaving anyway
        pass
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
