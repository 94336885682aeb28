"""Keeps docs/reliability.md true: after the session, the recorded results are compared with
the document's table (or written into it with TAOFLOW_UPDATE_DOCS=1).

`test_zz_report.py` checks the same thing as a test; this hook repeats it at the very end, so
a random test order (the report test running before a trial test) cannot hide a drift.
"""

from __future__ import annotations

import os

import pytest

from tests.reliability import ledger

REPORT_TEST = "test_zz_report.py"


def _report_collected(session) -> bool:
    return any(item.path.name == REPORT_TEST for item in getattr(session, "items", ()))


def pytest_sessionfinish(session, exitstatus):
    records = ledger.this_session()
    if not records:
        return
    ledger.RECORDS.mkdir(parents=True, exist_ok=True)
    (ledger.RECORDS / "report.md").write_text(ledger.render(records) + "\n")
    if os.environ.get("TAOFLOW_UPDATE_DOCS") == "1":
        ledger.rewrite_doc(records)
        return
    if not _report_collected(session):
        return  # a hand-picked subset: partial counts are expected
    drift = ledger.disagreements(records)
    if drift:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        text = "docs/reliability.md disagrees with this run (TAOFLOW_UPDATE_DOCS=1 rewrites it):\n  " + "\n  ".join(drift)
        if reporter:
            reporter.write_line(text, red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
