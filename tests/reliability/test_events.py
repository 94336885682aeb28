"""The event receiver rows: the hostile-input tests and the 1,000-event burst are the events
package's own tests; here they are run again (not copied) and their counts recorded."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from tests.events.conftest import prefect_api_url  # noqa: F401 - fixture
from tests.events.test_bridge_e2e import test_burst_of_1000_events_one_event_per_dataset_none_lost as burst
from tests.reliability import ledger
from tests.reliability.ledger import REPO

pytestmark = pytest.mark.services


def test_receiver_hostile_suite_passes_and_is_counted(tmp_path):
    junit = tmp_path / "hostile.xml"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/events/test_receiver_hostile.py", "-q", "-p", "no:cacheprovider",
         f"--junitxml={junit}"], cwd=REPO, capture_output=True, text=True, timeout=300)
    suite = ET.parse(junit).getroot().find("testsuite")
    cases, failures = int(suite.get("tests")), int(suite.get("failures")) + int(suite.get("errors"))
    skipped = int(suite.get("skipped"))
    assert done.returncode == 0 and failures == 0 and skipped == 0, done.stdout[-3000:]
    ledger.record("event-receiver", trials=cases, crashed=failures, test_cases_passed=cases - failures,
                  source="tests/events/test_receiver_hostile.py")


def test_burst_of_1000_events(prefect_api_url, tmp_path):  # noqa: F811
    figures: dict[str, int] = {}
    burst(prefect_api_url, tmp_path, lambda name, value: figures.__setitem__(name, value))
    # The burst test asserts 1,000 accepted, 20 replays counted as duplicates, one event per dataset
    # window and every upload in one; its latency is measured by bench/events.py, not here.
    ledger.record("event-load", trials=1000, lost=figures["lost"], runs_for_4_dataset_windows=figures["windows"])
