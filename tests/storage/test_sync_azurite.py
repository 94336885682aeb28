"""Sync down/up against a real Azurite: round trips, incremental re-sync, deletions, markers."""

from __future__ import annotations

import pytest

from tasks.errors import StorageNotFoundError
from tasks.storage import content_fingerprint, is_published, materialize, sync_down, sync_up
from tasks.storage.manifest import PUBLISHED_MARKER, PUBLISHING_MARKER
from tests.storage.helpers import access_for, blob_tree, location_of, nested_tree, read_tree, upload_tree, write_tree

pytestmark = pytest.mark.services


def test_round_trip_of_a_nested_tree_is_byte_identical(azurite, blob_container, workdir):
    tree = nested_tree()
    write_tree(workdir / "src", tree)
    location = location_of(azurite, blob_container, "runs/app/v1")

    up = sync_up(workdir / "src", location, access=access_for(azurite))
    assert up.files_transferred == len(tree) and up.published
    assert blob_tree(blob_container, "runs/app/v1").keys() == set(tree) | {PUBLISHED_MARKER}

    down = sync_down(location, workdir / "dst", access=access_for(azurite))
    assert read_tree(workdir / "dst") == tree
    assert down.files_transferred == len(tree)
    assert down.bytes_transferred == sum(len(v) for v in tree.values())
    assert down.published and down.fingerprint == up.fingerprint


def test_unchanged_resync_transfers_nothing_and_changes_are_picked_up(azurite, blob_container, workdir):
    tree = nested_tree(seed=3)
    upload_tree(blob_container, "data", tree)
    location = location_of(azurite, blob_container, "data")
    first = sync_down(location, workdir / "dst", access=access_for(azurite))
    assert first.bytes_transferred == sum(len(v) for v in tree.values())

    again = sync_down(location, workdir / "dst", access=access_for(azurite))
    assert (again.files_transferred, again.bytes_transferred) == (0, 0)
    assert again.files_skipped == len(tree)
    assert again.fingerprint == first.fingerprint

    blob_container.upload_blob("data/labels/000001.txt", b"changed\n", overwrite=True)
    blob_container.delete_blob("data/deep/a/b/c/d/leaf.bin")
    third = sync_down(location, workdir / "dst", access=access_for(azurite))
    assert (third.files_transferred, third.files_deleted) == (1, 1)
    assert third.fingerprint != first.fingerprint
    tree["labels/000001.txt"] = b"changed\n"
    del tree["deep/a/b/c/d/leaf.bin"]
    assert read_tree(workdir / "dst") == tree
    assert not (workdir / "dst/deep").exists(), "emptied folders are removed too"


def test_a_locally_modified_file_is_restored(azurite, blob_container, workdir):
    upload_tree(blob_container, "", {"a.txt": b"remote"})
    location = location_of(azurite, blob_container)
    sync_down(location, workdir / "dst", access=access_for(azurite))
    (workdir / "dst/a.txt").write_bytes(b"edited locally")
    report = sync_down(location, workdir / "dst", access=access_for(azurite))
    assert report.files_transferred == 1
    assert (workdir / "dst/a.txt").read_bytes() == b"remote"


def test_a_single_blob_syncs_to_a_file_and_materialize_returns_it(azurite, blob_container, workdir):
    upload_tree(blob_container, "models", {"resnet18.hdf5": b"weights" * 1000, "other.hdf5": b"x"})
    location = location_of(azurite, blob_container, "models/resnet18.hdf5")
    report = sync_down(location, workdir / "model", access=access_for(azurite))
    assert report.single_file and report.files_total == 1
    assert read_tree(workdir / "model") == {"resnet18.hdf5": b"weights" * 1000}
    path = materialize(location, workdir / "model", access=access_for(azurite))
    assert path == workdir / "model" / "resnet18.hdf5" and path.read_bytes() == b"weights" * 1000


def test_az_url_takes_the_account_from_the_environment(azurite_env, blob_container, workdir):
    upload_tree(blob_container, "p", {"x/y.txt": b"hello"})
    sync_down(f"az://{blob_container.container_name}/p", workdir / "dst")
    assert read_tree(workdir / "dst") == {"x/y.txt": b"hello"}


def test_half_published_results_are_refused_and_nested_ones_ignored(azurite, blob_container, workdir):
    upload_tree(blob_container, "out/run1", {"model.hdf5": b"partial", PUBLISHING_MARKER: b"{}"})
    upload_tree(blob_container, "out/run0", {"model.hdf5": b"old"})
    access = access_for(azurite)
    with pytest.raises(StorageNotFoundError, match="not published"):
        sync_down(location_of(azurite, blob_container, "out/run1"), workdir / "a", access=access)
    assert not (workdir / "a" / "model.hdf5").exists()
    with pytest.raises(StorageNotFoundError, match="no _taoflow_published.json"):
        sync_down(location_of(azurite, blob_container, "out/run0"), workdir / "b", access=access, require_published=True)
    whole = sync_down(location_of(azurite, blob_container, "out"), workdir / "c", access=access)
    assert read_tree(workdir / "c") == {"run0/model.hdf5": b"old"}
    assert whole.ignored_unpublished == ("run1",)
    assert not is_published(location_of(azurite, blob_container, "out/run1"), access)


def test_extra_blobs_beside_a_published_upload_stay_invisible(azurite, blob_container, workdir):
    write_tree(workdir / "src", {"a.txt": b"A"})
    location = location_of(azurite, blob_container, "res")
    sync_up(workdir / "src", location, access=access_for(azurite))
    blob_container.upload_blob("res/stray.txt", b"not published")
    sync_down(location, workdir / "dst", access=access_for(azurite))
    assert read_tree(workdir / "dst") == {"a.txt": b"A"}


def test_republishing_identical_results_uploads_nothing(azurite, blob_container, workdir):
    write_tree(workdir / "src", nested_tree(files=8))
    location = location_of(azurite, blob_container, "res")
    sync_up(workdir / "src", location, access=access_for(azurite))
    again = sync_up(workdir / "src", location, access=access_for(azurite))
    assert (again.files_transferred, again.files_skipped) == (0, 8)
    assert is_published(location, access_for(azurite))
    assert content_fingerprint(location, access_for(azurite)) == again.fingerprint


def test_local_locations_work_both_ways(workdir):
    tree = nested_tree(seed=11, files=10)
    write_tree(workdir / "src", tree)
    up = sync_up(workdir / "src", workdir / "published")
    assert up.published
    assert is_published(workdir / "published")
    down = sync_down(workdir / "published", workdir / "copy")
    assert read_tree(workdir / "copy") == tree
    assert sync_down(workdir / "published", workdir / "copy").bytes_transferred == 0
    assert materialize(str(workdir / "src"), workdir / "unused") == workdir / "src"
    assert down.fingerprint == content_fingerprint(workdir / "published")
