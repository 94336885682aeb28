"""The champion pointer on a local folder and on real Azurite: compare-and-swap, the lock, writers
racing from separate processes (exactly one wins, nothing is lost or torn), readers that never
see half a pointer."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from tasks.registry.pointer import LOCK_FILE, read_pointer, swap_pointer

REPO = Path(__file__).resolve().parents[2]


def pointer(version: str, size: int = 0) -> bytes:
    return json.dumps({"version": version, "padding": "x" * size}).encode()


def test_compare_and_swap(app):
    assert read_pointer(app).data is None
    assert swap_pointer(app, pointer("v1"), None) == "swapped"
    assert swap_pointer(app, pointer("v2"), None) == "changed", "a second 'first champion' must not overwrite the first"
    first = read_pointer(app)
    assert json.loads(first.data)["version"] == "v1" and first.token
    assert swap_pointer(app, pointer("v2"), first.token) == "swapped"
    assert swap_pointer(app, pointer("v3"), first.token) == "changed", "a stale token must not win"
    assert json.loads(read_pointer(app).data)["version"] == "v2"


def test_a_held_lock_makes_a_writer_wait_then_give_up_without_writing(app, tmp_path):
    assert swap_pointer(app, pointer("v1"), None) == "swapped"
    before = read_pointer(app)
    with held_lock(app, tmp_path):
        started = time.monotonic()
        assert swap_pointer(app, pointer("v2"), before.token, wait=1.0) == "busy"
        assert time.monotonic() - started >= 1.0
    assert read_pointer(app).data == before.data
    assert swap_pointer(app, pointer("v2"), before.token, wait=1.0) == "swapped"


def test_writers_racing_from_separate_processes_one_wins(app, tmp_path):
    assert swap_pointer(app, pointer("v0"), None) == "swapped"
    token = read_pointer(app).token
    go = tmp_path / "go"
    code = (
        "import sys, time, os\n"
        "from tasks.registry.pointer import swap_pointer\n"
        f"while not os.path.exists({str(go)!r}): time.sleep(0.01)\n"
        "print(swap_pointer(sys.argv[1], ('{\"version\": \"' + sys.argv[2] + '\"}').encode(), sys.argv[3] or None))\n"
    )
    racers = [subprocess.Popen([sys.executable, "-c", code, app, f"w{i}", token or ""], cwd=REPO,
                               stdout=subprocess.PIPE, text=True) for i in range(6)]
    go.touch()
    results = [p.communicate(timeout=120)[0].strip() for p in racers]
    assert sorted(results) == ["changed"] * 5 + ["swapped"], results
    winner = f"w{results.index('swapped')}"
    assert json.loads(read_pointer(app).data)["version"] == winner


def test_readers_never_see_half_a_pointer(app):
    assert swap_pointer(app, pointer("v0", 200_000), None) == "swapped"
    torn: list[bytes] = []
    seen: set[str] = set()
    stop = threading.Event()

    def read_all_the_time():
        while not stop.is_set():
            data = read_pointer(app).data
            try:
                seen.add(json.loads(data)["version"])
            except ValueError:
                torn.append(data[:80])

    reader = threading.Thread(target=read_all_the_time)
    reader.start()
    try:
        for i in range(1, 25):
            assert swap_pointer(app, pointer(f"v{i}", 200_000 + i), read_pointer(app).token) == "swapped"
    finally:
        stop.set()
        reader.join(60)
    assert torn == []
    assert len(seen) > 1, "the reader never overlapped a write"


class held_lock:
    """The registry's lock, held by someone else: flock on the local lock file, a lease on the blob."""

    def __init__(self, app: str, tmp_path: Path) -> None:
        self.app = app

    def __enter__(self):
        if "://" not in self.app:
            self.fd = os.open(Path(self.app) / LOCK_FILE, os.O_RDWR | os.O_CREAT)
            fcntl.flock(self.fd, fcntl.LOCK_EX)
            return self
        from azure.storage.blob import BlobClient

        *_, account, container, rest = self.app.split("/", 5)
        blob = BlobClient.from_connection_string(os.environ["AZURE_STORAGE_CONNECTION_STRING"], container,
                                                 f"{rest}/{LOCK_FILE}")
        self.lease = blob.acquire_lease(lease_duration=-1)
        return self

    def __exit__(self, *exc):
        if "://" not in self.app:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
        else:
            self.lease.release()
