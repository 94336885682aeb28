"""Keeps docs/reliability.md true: at the end of a whole-suite session, whatever order the tests
ran in, the recorded results are compared with the document's table (or written into it with
TAOFLOW_UPDATE_DOCS=1). A hand-picked subset records partial counts and is not compared.
"""

from __future__ import annotations

import os

import pytest

from tests.reliability import ledger


def _whole_suite(session) -> bool:
    """No paths, `-k` or `-m` picked a subset (`--deselect` of single tests is allowed)."""
    config, options = session.config, session.config.option
    return config.args_source == pytest.Config.ArgsSource.TESTPATHS and not options.keyword and not options.markexpr


def pytest_sessionfinish(session, exitstatus):
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
        text = "docs/reliability.md disagrees with this run (TAOFLOW_UPDATE_DOCS=1 rewrites it):\n  " + "\n  ".join(drift)
        if reporter:
            reporter.write_line(text, red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
