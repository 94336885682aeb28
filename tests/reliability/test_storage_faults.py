"""Storage faults at the task level on real Azurite and a real Prefect API: Azurite killed
mid-download and mid-upload (the Prefect task's retry completes, readers never see a half
publication), and a full disk under the cache (a 2 MiB tmpfs)."""

from __future__ import annotations

import subprocess
import threading
import time

import pytest
from prefect import flow

from tasks.errors import StorageError
from tasks.storage import sync_down
from tasks.storage.manifest import SyncManifest
from tasks.storage.staging import STAGING_DIR
from tasks.storage.sync_tasks import sync_down_task, sync_up_task
from tests.fixtures.services import service_missing
from tests.reliability import ledger
from tests.storage.helpers import access_for, location_of, nested_tree, read_tree, upload_tree, write_tree

pytestmark = pytest.mark.services

AZURITE_AUTOSAVE_SECONDS = 6
FAST_RETRIES = dict(retry_delay_seconds=[2, 3, 5, 10])


def kill_when(azurite, ready, *, down_for: float = 3.0, timeout: float = 60.0) -> threading.Event:
    """Kill Azurite (SIGKILL) as soon as `ready()` is true, bring it back `down_for` s later."""
    done = threading.Event()

    def watch():
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready():
                azurite.stop(kill=True)
                time.sleep(down_for)
                azurite.start()
                done.set()
                return
            time.sleep(0.01)

    threading.Thread(target=watch, daemon=True).start()
    return done


def count_files(root) -> int:
    return sum(1 for p in root.rglob("*") if p.is_file()) if root.exists() else 0


def test_azurite_killed_mid_download_the_task_retry_completes(prefect_api, azurite, blob_container, workdir):
    tree = nested_tree(seed=21, files=150)
    upload_tree(blob_container, "data", tree)
    time.sleep(AZURITE_AUTOSAVE_SECONDS)  # let Azurite's metadata reach disk before the SIGKILL
    dest = workdir / "cache"
    outage = kill_when(azurite, lambda: count_files(dest) >= len(tree) // 3)

    @flow(name="reliability-download-outage")
    def download():
        return sync_down_task.with_options(**FAST_RETRIES)(
            location_of(azurite, blob_container, "data"), dest, access_for(azurite), concurrency=2)

    report = download(return_state=True)
    assert outage.wait(30), "the outage was never injected"
    assert report.is_completed(), report.message
    assert read_tree(dest) == tree, "files are not byte-identical after the retry"
    ledger.record("azurite-download", trials=1, lost=len(set(tree) ^ set(read_tree(dest))),
                  files=len(tree), mb=round(sum(map(len, tree.values())) / 1e6, 1))


def test_azurite_killed_mid_upload_readers_never_see_half_a_model(prefect_api, azurite, blob_container, workdir):
    tree = nested_tree(seed=22, files=150)
    time.sleep(AZURITE_AUTOSAVE_SECONDS)  # the fresh container itself must survive the SIGKILL
    write_tree(workdir / "results", tree)
    location = location_of(azurite, blob_container, "models/app/run-1")
    access = access_for(azurite)
    uploaded = lambda: sum(1 for _ in blob_container.list_blobs(name_starts_with="models/"))  # noqa: E731
    outage = kill_when(azurite, lambda: _safe(uploaded) >= len(tree) // 3)
    stop = threading.Event()
    reads = {"refused": 0, "complete": 0, "half": 0}

    def reader():
        n = 0
        while not stop.is_set():
            n += 1
            try:
                sync_down(location, workdir / f"reader{n}", access=access, require_published=True)
            except StorageError:
                reads["refused"] += 1  # down, or not published yet: both are the right answer
                continue
            reads["complete" if read_tree(workdir / f"reader{n}") == tree else "half"] += 1

    threading.Thread(target=reader, daemon=True).start()

    @flow(name="reliability-upload-outage")
    def publish():
        return sync_up_task.with_options(**FAST_RETRIES)(workdir / "results", location, access, concurrency=2)

    state = publish(return_state=True)
    time.sleep(1.0)  # a few reads of the finished publication
    stop.set()
    assert outage.wait(30), "the outage was never injected"
    assert state.is_completed(), state.message
    sync_down(location, workdir / "final", access=access, require_published=True)
    assert read_tree(workdir / "final") == tree
    assert reads["half"] == 0 and reads["refused"] > 0 and reads["complete"] > 0, reads
    ledger.record("azurite-upload", trials=1, lost=reads["half"], files=len(tree),
                  reader_polls=reads["refused"] + reads["complete"] + reads["half"])


def _safe(fn) -> int:
    try:
        return fn()
    except Exception:  # noqa: BLE001 - Azurite is down: nothing new to count
        return 0


@pytest.fixture
def tiny_disk(workdir):
    path = workdir / "small"
    path.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(path)], capture_output=True, text=True)
    if done.returncode != 0:
        service_missing(f"cannot mount a 2 MiB tmpfs for the disk-full test (needs root): {done.stderr.strip()}")
    yield path
    subprocess.run(["umount", "-l", str(path)], check=False)


def test_disk_full_in_the_cache_is_a_clear_storage_error_and_nothing_corrupt(azurite, blob_container, tiny_disk):
    tree = {f"images/{i:04d}.png": bytes([i % 251]) * 150_000 for i in range(30)}  # 4.5 MB > 2 MiB
    upload_tree(blob_container, "data", tree)
    dest = tiny_disk / "inputs"
    location = location_of(azurite, blob_container, "data")
    with pytest.raises(StorageError) as caught:
        sync_down(location, dest, access=access_for(azurite), concurrency=2)
    text = caught.value.render()
    assert "No space left" in text or "space" in text, text
    arrived = read_tree(dest)
    assert 0 < len(arrived) < len(tree)
    corrupt = sum(1 for name, data in arrived.items() if tree[name] != data)
    assert corrupt == 0, "a partial file was left under its final name"
    assert not (dest / STAGING_DIR).exists(), "staging leftovers"
    manifest = SyncManifest.load(dest)
    assert set(manifest.files) == set(arrived), "the manifest does not describe what is on disk"
    subprocess.run(["mount", "-o", "remount,size=16m", str(tiny_disk)], check=True)
    retry = sync_down(location, dest, access=access_for(azurite), concurrency=2)
    assert retry.files_transferred == len(tree) - len(arrived) and read_tree(dest) == tree
    ledger.record("disk-full", trials=1, lost=corrupt, error=type(caught.value).__name__,
                  files_kept_before_retry=len(arrived))
