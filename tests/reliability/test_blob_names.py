"""Hostile blob names through sync down into a target dir: refused before any write, or written
inside the target; nothing ever appears outside it. Names Azurite can hold go through real
Azurite; the rest (which no Azure service can list back) through the same guard in-process."""

from __future__ import annotations

import os
import unicodedata

import pytest

from tasks.errors import StorageError
from tasks.storage import sync_down
from tasks.storage.stores import Entry
from tasks.storage.sync import check_names
from tests.reliability import ledger
from tests.storage.helpers import access_for, location_of, read_tree, upload_tree

pytestmark = pytest.mark.services

NFC, NFD = unicodedata.normalize("NFC", "caf\u00e9.txt"), unicodedata.normalize("NFD", "caf\u00e9.txt")
VIA_AZURITE = {
    "absolute": "/abs.txt", "backslash": "a\\..\\..\\escape.txt", "empty-segment": "a//b.txt",
    "tab": "t\tab.txt", "newline": "new\nline.txt", "1025-chars": "d/" + "x" * 1023,
    "long-segment": "x" * 300 + "/f.txt", "dot-segment": "./a.txt",
}
IN_PROCESS = {"dotdot": "../escape.txt", "deep-dotdot": "a/../../escape.txt", "nul": "a\x00b", "control": "a\x01b",
              "del": "a\x7fb", "drive": "C:/x.txt", "only-dots": "..", "bare-dot": "."}


def files_outside(root, target) -> set[str]:
    found = set()
    for d, _, names in os.walk(root):
        for n in names:
            path = os.path.join(d, n)
            if not path.startswith(str(target) + os.sep):
                found.add(path)
    return found


@pytest.mark.parametrize("case", sorted(VIA_AZURITE))
def test_hostile_blob_name_via_azurite(azurite, blob_container, workdir, case):
    name = VIA_AZURITE[case]
    try:
        upload_tree(blob_container, "", {"ok/one.txt": b"1", name: b"evil"})
    except Exception:  # noqa: BLE001 - the service itself refused the name: nothing to sync
        ledger.record("blob-names", trials=1, sums={"refused_by_azurite": 1})
        return
    target = workdir / "target"
    before = files_outside(workdir, target)
    outcome = "written inside"
    try:
        sync_down(location_of(azurite, blob_container), target, access=access_for(azurite))
    except StorageError as exc:
        assert exc.problems and exc.problems[0].code == "unsafe-blob-name", exc.render()
        assert read_tree(target) == {} if target.exists() else True
        outcome = "refused"
    leaked = len(files_outside(workdir, target) - before)
    assert leaked == 0
    if outcome == "written inside":
        assert all(os.path.realpath(p).startswith(str(target)) for p in target.rglob("*"))
    ledger.record("blob-names", trials=1, leaked=leaked, sums={outcome.replace(" ", "_"): 1})


@pytest.mark.parametrize("case", sorted(IN_PROCESS))
def test_hostile_blob_name_in_process(case):
    with pytest.raises(StorageError):
        check_names({IN_PROCESS[case]: Entry(IN_PROCESS[case], 1, "e"), "ok.txt": Entry("ok.txt", 1, "e")}, "here")
    ledger.record("blob-names", trials=1, sums={"refused": 1})


def test_unicode_normalisation_twins_stay_two_files_inside_the_target(azurite, blob_container, workdir):
    upload_tree(blob_container, "", {NFC: b"composed", NFD: b"decomposed"})
    target = workdir / "target"
    sync_down(location_of(azurite, blob_container), target, access=access_for(azurite))
    got = read_tree(target)
    # Linux file names are bytes: both survive, each with its own content, nothing outside.
    assert got == {NFC: b"composed", NFD: b"decomposed"}
    assert files_outside(workdir, target) == set()
    ledger.record("blob-names", trials=1, sums={"nfc_nfd_twins_kept_apart": 1})
