"""Test session set-up: an isolated Prefect home and the real-service fixtures.

Settings are exported before anything imports Prefect, so every test (and every subprocess
it starts) talks to this session's own ephemeral API and never to a developer's profile.
"""

from __future__ import annotations

import os
import sys
import tempfile
import uuid

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
if os.environ.get("PYTEST_XDIST_WORKER"):
    # A parallel worker inherits the controller's environment: it keeps a Prefect home of its own.
    os.environ["PREFECT_HOME"] = _SESSION_HOME
    os.environ["PREFECT_PROFILES_PATH"] = os.path.join(_SESSION_HOME, "profiles.toml")
# One id for the whole run, set before the parallel workers start so they inherit it: the
# reliability ledger adds up the records of every worker under it.
os.environ.setdefault("TAOFLOW_TEST_RUN", uuid.uuid4().hex)
# A developer's PREFECT_API_URL must not leak into the tests.
os.environ.pop("PREFECT_API_URL", None)

from tests.reliability import ledger  # noqa: E402 - reads TAOFLOW_TEST_RUN, set just above

pytest_plugins = [
    "tests.fixtures.services",
    "tests.fixtures.docker_image",
    "tests.fixtures.job_inputs",
]


# --- order -------------------------------------------------------------------------------------


def pytest_collection_modifyitems(config, items):
    """Files with `slow` tests first, each file still in one piece: the parallel workers of
    scripts/test take whole files in this order, so the long ones do not end the run on one
    worker while the other idles. Tests marked `after_the_rest` run last: such a test waits out a
    window of wall-clock time (it waits only for what is left of it, so it is right in any order);
    run last, the window has passed while the other tests ran, instead of being slept through."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: (item.get_closest_marker("after_the_rest") is not None,
                                 item.path not in slow_files))


# --- docs/reliability.md ----------------------------------------------------------------------
#
# At the end of a whole-suite run, whatever order the tests ran in (in however many parallel workers
# and parts: scripts/test runs the `exclusive` tests in a second pytest), the recorded results are
# compared with the document's table (or written into it with TAOFLOW_UPDATE_DOCS=1). A hand-picked
# subset records partial counts and is not compared.


def _whole_suite(session) -> bool:
    """No paths, `-k` or `-m` picked a subset (`--deselect` of single tests is allowed); or this is
    the last part of scripts/test's whole suite (TAOFLOW_SUITE_PART=2), which sees every part's records."""
    part = os.environ.get("TAOFLOW_SUITE_PART")
    if part:
        return part == "2"
    config, options = session.config, session.config.option
    return config.args_source == pytest.Config.ArgsSource.TESTPATHS and not options.keyword and not options.markexpr


def _keep_reliability_doc_true(session) -> None:
    records = ledger.this_session()
    if not records:
        return
    ledger.RECORDS.mkdir(parents=True, exist_ok=True)
    (ledger.RECORDS / "report.md").write_text(ledger.render(records) + "\n")
    if os.environ.get("TAOFLOW_UPDATE_DOCS") == "1":
        ledger.rewrite_doc(records)
        return
    if not _whole_suite(session):
        return  # a hand-picked subset: partial counts are expected
    drift = ledger.disagreements(records)
    if drift:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        text = "docs/reliability.md disagrees with this run (TAOFLOW_UPDATE_DOCS=1 rewrites it):\n  "
        text += "\n  ".join(drift)
        if reporter:
            reporter.write_line(text, red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


# --- leaving the session -----------------------------------------------------------------------
#
# Prefect drains its log and event workers in an atexit hook with no time limit. When the last
# server a worker talked to is gone, that drain can wait forever, after the summary was printed:
# in CI that is a run that never ends. Under scripts/test (TAOFLOW_HARD_EXIT=1) the process
# drains them with a bound and then exits with pytest's own status.

_FINAL: dict[str, object] = {}


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    if not os.environ.get("PYTEST_XDIST_WORKER"):  # a parallel worker saw only its share of the records
        _keep_reliability_doc_true(session)
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
