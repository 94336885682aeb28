"""Blob names that would escape or corrupt the target are refused before anything is written."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tasks.errors import StorageError
from tasks.storage import sync_down
from tasks.storage.names import name_problem, safe_relative
from tasks.storage.stores import Entry
from tasks.storage.sync import check_names
from tests.storage.helpers import access_for, location_of, upload_tree


def _all_files(root: Path) -> set[str]:
    return {str(Path(d, f)) for d, _, files in os.walk(root) for f in files}


# Names Azurite (like Azure) accepts and lists back as they are. `..` segments, NUL and C0
# controls other than tab/newline cannot be created or listed there: the unit tests below cover them.
CREATABLE_HOSTILE = ["/abs.txt", "a//b.txt", "tab\there.txt", "new\nline.txt", "x" * 300 + "/long.txt"]


@pytest.mark.services
@pytest.mark.parametrize("hostile", CREATABLE_HOSTILE, ids=["absolute", "empty-segment", "tab", "newline", "long-segment"])
def test_a_hostile_blob_stops_the_sync_and_nothing_is_written(azurite, blob_container, workdir, hostile):
    upload_tree(blob_container, "", {"good/one.txt": b"1", "good/two.txt": b"2", hostile: b"evil"})
    before = _all_files(workdir)
    with pytest.raises(StorageError) as caught:
        sync_down(location_of(azurite, blob_container), workdir / "target", access=access_for(azurite))
    assert "nothing was downloaded" in caught.value.what
    assert caught.value.problems and caught.value.problems[0].code == "unsafe-blob-name"
    assert _all_files(workdir) == before, "no file may appear anywhere, inside or outside the target"


@pytest.mark.parametrize(
    "name",
    ["..", "../x", "a/../../x", "a/..", "./a", "/etc/passwd", "C:/x", "c:x", "a\\..\\x", "a\x00b", "a\x01b",
     "a\x7fb", "", "a/", "a" * 256, ("abc/" * 300)[:-1]],
)
def test_name_guard_refuses(name):
    assert name_problem(name) is not None


@pytest.mark.parametrize("name", ["a", "a/b/c.txt", "caf\u00e9/x y.png", "..hidden", "a..b", ".env", "x" * 255])
def test_name_guard_accepts(name):
    assert name_problem(name) is None


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(["a", "..", ".", "", "/", "\\", "\x00", "\n", "b.txt", "C:", "~"]), max_size=8))
def test_accepted_names_always_stay_inside_the_root(parts):
    name = "".join(parts)
    if name_problem(name) is None:
        root = Path("/srv/target")
        resolved = Path(os.path.normpath(root / safe_relative(name)))
        assert root in resolved.parents


def test_file_and_folder_with_the_same_name_are_refused():
    entries = {n: Entry(n, 1, "e") for n in ["a", "a/b"]}
    with pytest.raises(StorageError, match="both a file and a folder"):
        check_names(entries, "here")


def test_names_reserved_for_bookkeeping_are_refused():
    entries = {n: Entry(n, 1, "e") for n in [".taoflow-sync.json", ".taoflow-sync-tmp/x"]}
    with pytest.raises(StorageError) as caught:
        check_names(entries, "here")
    assert len(caught.value.problems) == 2
