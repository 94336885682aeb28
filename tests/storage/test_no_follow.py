"""Symlinks and special files in synced folders are never followed, opened or written through,
on real files (and real Azurite for uploads), with inotify as the witness for the outside."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest

from tasks.errors import NotRegularFile
from tasks.job.workspace import Workspace, stage_input
from tasks.storage import is_published, sync_down, sync_up
from tasks.storage.localfs import LocalTree
from tests.storage.helpers import access_for, blob_tree, location_of, read_tree, write_tree
from tests.storage.hostile_fs import SECRET, OutsideWatch, make_outside, plant_hostile_entries

REGULAR = {"weights/real.hdf5": b"model bytes" * 100, "status.json": b'{"status": "ok"}', "logs/train.log": b"x\n"}


@pytest.fixture
def hostile(tmp_path):
    """(folder with regular files and planted entries, the 'outside' tree, {planted name: kind})."""
    outside = make_outside(tmp_path / "host")
    folder = tmp_path / "results"
    write_tree(folder, REGULAR)
    return folder, outside, plant_hostile_entries(folder, outside)


def test_the_listing_reports_every_planted_entry_and_opens_nothing_outside(hostile):
    folder, outside, planted = hostile
    with OutsideWatch(outside) as watch:
        scan = LocalTree(folder).scan()
        assert watch.touched() == []
    assert set(scan.files) == set(REGULAR)
    assert {n.name: n.kind for n in scan.not_followed} == planted
    shown = {n.name: n.render() for n in scan.not_followed}
    assert str(outside / "etc" / "shadow") in shown["weights/model.hdf5"]  # the target as text, for the user


def test_a_file_swapped_after_the_listing_is_refused_from_the_open_descriptor(hostile):
    folder, outside, _ = hostile
    tree = LocalTree(folder)
    assert "weights/real.hdf5" in tree.scan().files
    with OutsideWatch(outside) as watch:
        # the last component becomes a symlink to a host file
        os.replace(folder / "weights" / "real.hdf5", folder / "weights" / "moved")
        os.symlink(outside / "etc" / "shadow", folder / "weights" / "real.hdf5")
        with pytest.raises(NotRegularFile, match="symlink"):
            with tree.open_read("weights/real.hdf5"):
                pass
        # a folder on the way becomes a symlink to a host folder holding a file of that name
        os.rename(folder / "logs", folder / "logs.old")
        os.symlink(outside / "etc", folder / "logs")
        with pytest.raises(NotRegularFile, match="symlink"):
            with tree.open_read("logs/shadow"):
                pass
        # a FIFO in a file's place: refused at once from fstat, not a read that waits for a writer
        os.unlink(folder / "status.json")
        os.mkfifo(folder / "status.json")
        done = threading.Event()

        def read_fifo():
            with pytest.raises(NotRegularFile, match="FIFO"):
                with tree.open_read("status.json"):
                    pass
            done.set()

        threading.Thread(target=read_fifo, daemon=True).start()
        assert done.wait(10), "opening a FIFO blocked"
        assert watch.touched() == []


def test_sync_down_never_writes_through_a_symlinked_folder_in_the_target(tmp_path, hostile):
    _, outside, _ = hostile
    source = tmp_path / "dataset"
    write_tree(source, {"images/1.png": b"png", "labels/1.txt": b"car"})
    dest = tmp_path / "cache"
    dest.mkdir()
    os.symlink(outside / "etc", dest / "images")  # planted in the target by someone else
    with OutsideWatch(outside) as watch:
        with pytest.raises(NotRegularFile) as caught:
            sync_down(source, dest)
        assert watch.touched() == []
    assert "images/1.png" in caught.value.what and "symlink" in caught.value.what
    assert os.readlink(dest / "images") == str(outside / "etc")


def test_sync_down_from_a_hostile_local_folder_copies_only_regular_files(tmp_path, hostile):
    folder, outside, planted = hostile
    notices = []
    with OutsideWatch(outside) as watch:
        report = sync_down(folder, tmp_path / "copy", notice=notices.append)
        assert watch.touched() == []
    assert read_tree(tmp_path / "copy") == REGULAR
    assert len(report.not_followed) == len(planted) and len(notices) == 1
    assert not any(p.is_symlink() for p in (tmp_path / "copy").rglob("*"))


def test_staging_a_local_input_in_place_ignores_what_symlinks_point_to(tmp_path, hostile):
    folder, outside, planted = hostile
    with OutsideWatch(outside) as watch:
        first = stage_input("training_data", str(folder), Workspace(tmp_path / "home"))
        (outside / "etc" / "shadow").write_bytes(b"changed outside")  # the test itself writes here
        watch.events()
        second = stage_input("training_data", str(folder), Workspace(tmp_path / "home"))
        assert watch.events() == []
    assert first.fingerprint == second.fingerprint, "the fingerprint depended on a symlink's target"
    assert len(first.not_followed) == len(planted) and not first.remote


@pytest.mark.services
def test_sync_up_publishes_only_regular_files_and_never_reads_the_host(azurite, blob_container, hostile):
    folder, outside, planted = hostile
    location = location_of(azurite, blob_container, "models/app/run1")
    with OutsideWatch(outside) as watch:
        report = sync_up(folder, location, access=access_for(azurite))
        assert watch.touched() == []
    published = blob_tree(blob_container, "models/app/run1")
    published.pop("_taoflow_published.json")
    assert published == REGULAR
    assert not any(SECRET in data for data in published.values())
    assert {line.split(" (")[0] for line in report.not_followed} == set(planted)


@pytest.mark.services
def test_a_file_turned_into_a_symlink_during_the_upload_stops_it_unpublished(azurite, blob_container, tmp_path):
    outside = make_outside(tmp_path / "host")
    folder = tmp_path / "results"
    write_tree(folder, {f"ckpt/{i:02d}.ckzip": bytes([i]) * 1000 for i in range(6)})
    location = location_of(azurite, blob_container, "models/app/run2")

    def swap_the_last_one(progress):
        if progress.files_done == 1:
            os.unlink(folder / "ckpt" / "05.ckzip")
            os.symlink(outside / "etc" / "shadow", folder / "ckpt" / "05.ckzip")

    with OutsideWatch(outside) as watch:
        with pytest.raises(NotRegularFile, match="05.ckzip"):
            sync_up(folder, location, access=access_for(azurite), concurrency=1, on_progress=swap_the_last_one)
        assert watch.touched() == []
    assert not is_published(location, access_for(azurite))
    assert not any(SECRET in data for data in blob_tree(blob_container, "models").values())


def _cli(*args: str) -> subprocess.CompletedProcess:
    """The real command in its own process; the time-out only keeps a hang from stalling the suite."""
    return subprocess.run([sys.executable, "-m", "taoflow", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.services
def test_the_cli_neither_hangs_on_a_fifo_nor_shows_a_traceback(azurite_env, blob_container, hostile, tmp_path):
    folder, outside, planted = hostile
    with OutsideWatch(outside) as watch:
        up = _cli("sync", "up", str(folder), location_of(azurite_env, blob_container, "m"))
        down = _cli("sync", "down", str(folder), str(tmp_path / "copy"))
        local_up = _cli("sync", "up", str(folder), str(tmp_path / "published"))
        assert watch.touched() == []
    for done in (up, down, local_up):
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr and "not followed" in done.stderr
        assert "weights/model.hdf5 (symlink ->" in done.stderr and "status.pipe (FIFO)" in done.stderr
    os.symlink(tmp_path / "gone", tmp_path / "dangling-root")
    for args in (("sync", "up", str(tmp_path / "dangling-root"), str(tmp_path / "x")),
                 ("sync", "down", str(tmp_path / "dangling-root"), str(tmp_path / "y"))):
        done = _cli(*args)
        assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
        assert done.stderr.startswith("error: ") and "dangling-root" in done.stderr
