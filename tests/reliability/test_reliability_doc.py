"""docs/reliability.md states every row of the ledger with enough trials and nothing lost. Reads the
document only, so it holds in any test order; the comparison with what this session measured is the
session-end hook in conftest.py."""

from __future__ import annotations

from tests.reliability import ledger


def test_every_row_is_documented_with_trials_and_no_loss():
    doc = ledger.documented()
    assert [row.id for row in ledger.ROWS] == list(doc), "the table's rows differ from ledger.ROWS"
    for row in ledger.ROWS:
        trials, bad = doc[row.id]
        assert trials is not None and trials >= row.minimum, f"{row.id}: {trials} trial(s), at least {row.minimum} wanted"
        assert bad == (0, 0, 0), f"{row.id}: {bad} lost / leaked / crashed"
