"""Faults: an upload interrupted half-way, Azurite killed mid-download and brought back."""

from __future__ import annotations

import time

import pytest

from tasks.errors import StorageNotFoundError, StorageUnreachableError
from tasks.storage import is_published, sync_down, sync_up
from tests.storage.helpers import access_for, location_of, nested_tree, read_tree, upload_tree, write_tree

pytestmark = pytest.mark.services

AZURITE_AUTOSAVE_SECONDS = 6


class Crash(Exception):
    """Stands for the process dying in the middle of a transfer."""


def crash_after(count: int):
    def callback(progress):
        if progress.files_done >= count:
            raise Crash(f"crashed after {progress.files_done} files")

    return callback


def test_an_interrupted_upload_is_invisible_and_a_retry_completes_it(azurite, blob_container, workdir):
    tree = nested_tree(seed=5, files=40)
    write_tree(workdir / "results", tree)
    location = location_of(azurite, blob_container, "out/app/run7")
    access = access_for(azurite)

    with pytest.raises(Crash):
        sync_up(workdir / "results", location, access=access, concurrency=4, on_progress=crash_after(len(tree) // 2))
    assert not is_published(location, access)
    with pytest.raises(StorageNotFoundError, match="not published"):
        sync_down(location, workdir / "reader", access=access)
    assert not (workdir / "reader").exists() or read_tree(workdir / "reader") == {}
    whole = sync_down(location_of(azurite, blob_container, "out"), workdir / "all", access=access)
    assert read_tree(workdir / "all") == {} and whole.ignored_unpublished == ("app/run7",)

    retry = sync_up(workdir / "results", location, access=access, concurrency=4)
    assert retry.published and 0 < retry.files_transferred < len(tree), "the retry resumes, it does not start over"
    assert is_published(location, access)
    sync_down(location, workdir / "reader", access=access)
    assert read_tree(workdir / "reader") == tree


def test_azurite_stopped_mid_download_then_restarted_the_retry_completes(azurite, blob_container, workdir):
    tree = nested_tree(seed=9, files=80)
    upload_tree(blob_container, "data", tree)
    # Azurite saves its metadata every 5 s and the fixture kills it hard: let the container reach disk.
    time.sleep(AZURITE_AUTOSAVE_SECONDS)
    location = location_of(azurite, blob_container, "data")
    access = access_for(azurite, retries=1)

    def stop_halfway(progress):
        if progress.files_done == len(tree) // 2:
            azurite.stop()

    try:
        # Azurite stays down: after its time-bounded reconnects the sync says so, once, and is not
        # retried again as transient (that would only repeat the wait).
        with pytest.raises(StorageUnreachableError) as caught:
            sync_down(location, workdir / "dst", access=access, concurrency=4, on_progress=stop_halfway)
        assert not caught.value.transient
        assert f"container {blob_container.container_name}" in caught.value.where
        assert "connection was refused" in caught.value.what and azurite.blob_endpoint in caught.value.what
    finally:
        if azurite.process is None:
            azurite.start()
    partial = read_tree(workdir / "dst")
    assert 0 < len(partial) < len(tree)
    assert all(tree[name] == data for name, data in partial.items()), "whatever arrived is complete"

    retry = sync_down(location, workdir / "dst", access=access, concurrency=4)
    assert retry.files_transferred == len(tree) - len(partial)
    assert read_tree(workdir / "dst") == tree
