"""Neighbours and killers, with real processes on real Azurite.

- storage-concurrency: two `taoflow sync down` into one folder, two `taoflow sync up` of
  different content to one prefix, two staging flows with the same inputs. The test holds the
  target (the folder's lock, the prefix's lease) until both contenders say they wait, then lets
  go: both run into each other for certain, not by timing luck. `--wait 0` gives the busy error.
- sync-kill-resume: `taoflow sync down` / `sync up` killed with SIGKILL at a seeded moment; the
  re-run moves only what is missing and leaves no temporaries.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from tasks.errors import StorageError
from tasks.job.workspace import Workspace
from tasks.storage import StorageAccess, open_store, sync_down
from tasks.storage.localfs import RESERVED_NAMES, LocalTree
from tasks.storage.manifest import PUBLISHED_MARKER, SyncManifest
from tests.reliability import ledger
from tests.storage.helpers import access_for, location_of, read_tree, upload_tree, write_tree
from tests.storage.upload_gate import UploadGate

pytestmark = [pytest.mark.services, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]


def tree_of(seed: int, files: int = 120, size: int = 40_000) -> dict[str, bytes]:
    rng = random.Random(seed)
    return {f"images/{i % 4}/{i:05d}.jpg": rng.randbytes(size) for i in range(files)}


class Proc:
    """A real process whose output goes to a file we can poll while it runs."""

    def __init__(self, args: list[str], log: Path, env: dict | None = None) -> None:
        self.log = log
        with open(log, "wb") as out:
            self.popen = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=REPO,
                                          env=env or dict(os.environ))

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def says(self, text: str) -> bool:
        return text in self.output()

    def finish(self, timeout: float = 300) -> tuple[int, str]:
        return self.popen.wait(timeout), self.output()


def taoflow(*args: str, log: Path, env: dict | None = None) -> Proc:
    return Proc([sys.executable, "-m", "taoflow", *args], log, env)


def wait_until(condition, timeout: float = 120.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def last_json(text: str) -> dict:
    start = text.index("{\n")
    return json.loads(text[start:text.rindex("}") + 1])


def leftovers(folder: Path) -> list[str]:
    """Bookkeeping that should be gone after a completed sync (the manifest stays)."""
    return [n for n in RESERVED_NAMES - {".taoflow-sync.json"} if os.path.lexists(folder / n)]


def test_two_sync_downs_into_one_folder_serialise(azurite_env, blob_container, tmp_path):
    bad = 0
    for trial in range(3):
        tree = tree_of(trial)
        upload_tree(blob_container, f"d{trial}", tree)
        dest = tmp_path / f"cache{trial}"
        location = location_of(azurite_env, blob_container, f"d{trial}")
        with LocalTree(dest).lock(wait=0):  # hold the folder until both contenders queue behind us
            procs = [taoflow("sync", "down", location, str(dest), "--json", "--concurrency", "4",
                             log=tmp_path / f"down{trial}-{i}.log") for i in range(2)]
            wait_until(lambda: all(p.says("waiting for another sync") for p in procs), what="both to wait")
        results = [p.finish() for p in procs]
        assert [code for code, _ in results] == [0, 0], results
        moved = sorted(last_json(out)["files_transferred"] for _, out in results)
        assert moved == [0, len(tree)], moved  # the second found everything the first wrote
        bad += read_tree(dest) != tree or bool(leftovers(dest))
    assert bad == 0
    ledger.record("storage-concurrency", trials=3, lost=bad, sums={"sync_down_pairs": 3})


def _published_matches_blobs(container, prefix: str, trees: list[dict]) -> bool:
    """The marker lists exactly the blobs' MD5s, and they are one whole tree of the contenders."""
    marker = json.loads(container.download_blob(f"{prefix}/{PUBLISHED_MARKER}").readall())["files"]
    blobs = {b.name[len(prefix) + 1:]: b for b in container.list_blobs(name_starts_with=f"{prefix}/")}
    for name, info in marker.items():
        if name not in blobs or bytes(blobs[name].content_settings.content_md5).hex() != info["md5"]:
            return False
    contents = {n: container.download_blob(f"{prefix}/{n}").readall() for n in marker}
    return any(contents == tree for tree in trees)


def test_two_sync_ups_to_one_prefix_leave_one_consistent_publication(azurite_env, blob_container, tmp_path):
    bad = 0
    access = StorageAccess(connection_string=azurite_env.connection_string)
    for trial in range(3):
        trees = [tree_of(100 + trial * 2 + i, files=60) for i in range(2)]  # same names, different bytes
        for i, tree in enumerate(trees):
            write_tree(tmp_path / f"src{trial}-{i}", tree)
        prefix = f"models/app/run{trial}"
        location = location_of(azurite_env, blob_container, prefix)
        reads = {"refused": 0, "whole": 0, "mixed": 0}
        stop = threading.Event()
        reader = threading.Thread(target=_read_while, args=(location, access, trees, reads, stop, tmp_path / f"r{trial}"))
        with open_store(location, access).publication(b"{}", wait=0) as held:
            procs = [taoflow("sync", "up", str(tmp_path / f"src{trial}-{i}"), location, "--json", "--concurrency", "4",
                             log=tmp_path / f"up{trial}-{i}.log") for i in range(2)]
            wait_until(lambda: all(p.says("waiting for another upload") for p in procs), what="both to wait")
            reader.start()
            held.finish()
        results = [p.finish() for p in procs]
        stop.set()
        reader.join(60)
        assert [code for code, _ in results] == [0, 0], results
        assert _published_matches_blobs(blob_container, prefix, trees)
        assert reads["mixed"] == 0, reads
        bad += reads["mixed"]
    ledger.record("storage-concurrency", trials=3, lost=bad, sums={"sync_up_pairs": 3})


def _read_while(location, access, trees, reads, stop, folder: Path) -> None:
    n = 0
    while not stop.is_set():
        n += 1
        try:
            sync_down(location, folder / str(n), access=access, require_published=True)
        except StorageError:
            reads["refused"] += 1
            continue
        got = read_tree(folder / str(n))
        reads["whole" if any(got == t for t in trees) else "mixed"] += 1


def test_a_busy_target_with_no_wait_is_one_clear_error(azurite_env, blob_container, tmp_path):
    upload_tree(blob_container, "d", {"a.txt": b"a"})
    write_tree(tmp_path / "src", {"a.txt": b"b"})
    location = location_of(azurite_env, blob_container, "d")
    with LocalTree(tmp_path / "dest").lock(wait=0):
        down = taoflow("sync", "down", location, str(tmp_path / "dest"), "--wait", "0", log=tmp_path / "down.log")
        code_down, out_down = down.finish()
    with open_store(location, StorageAccess(connection_string=azurite_env.connection_string)).publication(b"{}", 0):
        up = taoflow("sync", "up", str(tmp_path / "src"), location, "--wait", "0", log=tmp_path / "up.log")
        code_up, out_up = up.finish()
    for code, out, text in ((code_down, out_down, "another sync is using this folder"),
                            (code_up, out_up, "another upload is publishing at this prefix")):
        assert code == 1 and out.startswith("error: ") and text in out and "Traceback" not in out, out
    ledger.record("storage-concurrency", trials=2, sums={"busy_errors": 2})


STAGE_SCRIPT = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from prefect import flow
    from tasks.job.job_tasks import stage_all
    from tasks.storage import StorageAccess
    from tasks.job.workspace import Workspace

    locations, home, connection = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]

    @flow(name="stage-same-inputs")
    def stage():
        return stage_all(locations, Workspace(Path(home)), StorageAccess(connection_string=connection))

    staged = stage()
    print("STAGED " + json.dumps({n: [s.fingerprint, s.bytes_transferred] for n, s in staged.items()}))
""")


def test_two_flow_runs_with_the_same_inputs_share_the_staging_cache(prefect_api, azurite_env, blob_container, tmp_path):
    tree = tree_of(7, files=80)
    upload_tree(blob_container, "data", tree)
    blob_container.upload_blob("model/resnet18.hdf5", b"M" * 50_000)
    locations = {"training_data": location_of(azurite_env, blob_container, "data"),
                 "base_model": location_of(azurite_env, blob_container, "model/resnet18.hdf5")}
    workspace = Workspace(tmp_path / "home")
    env = dict(os.environ, PREFECT_API_URL=prefect_api)
    args = [sys.executable, "-c", STAGE_SCRIPT, json.dumps(locations), str(workspace.root), azurite_env.connection_string]
    with LocalTree(workspace.input_dir(locations["training_data"])).lock(wait=0):
        procs = [Proc(args, tmp_path / f"stage{i}.log", env) for i in range(2)]
        wait_until(lambda: all(p.says("waiting for another sync") for p in procs), what="both flows to wait")
    results = [p.finish() for p in procs]
    assert [code for code, _ in results] == [0, 0], results
    staged = [json.loads(out.split("STAGED ", 1)[1].splitlines()[0]) for _, out in results]
    assert staged[0]["training_data"][0] == staged[1]["training_data"][0]
    moved = sum(s["training_data"][1] for s in staged)
    assert moved == sum(map(len, tree.values())), "the dataset was transferred twice (or not at all)"
    assert read_tree(workspace.input_dir(locations["training_data"])) == tree
    ledger.record("storage-concurrency", trials=1, sums={"staging_flow_pairs": 1})


# --- killed ------------------------------------------------------------------------------


def _files(folder: Path) -> dict[str, bytes]:
    return read_tree(folder, skip=RESERVED_NAMES)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_killed_sync_down_resumes_with_only_the_missing_files(azurite_env, blob_container, tmp_path, seed):
    tree = tree_of(seed, files=160, size=60_000)
    upload_tree(blob_container, "data", tree)
    dest = tmp_path / "cache"
    location = location_of(azurite_env, blob_container, "data")
    kill_at = random.Random(seed).randint(len(tree) // 5, len(tree) * 3 // 4)
    proc = taoflow("sync", "down", location, str(dest), "--concurrency", "2", log=tmp_path / "killed.log")
    wait_until(lambda: len(_files(dest)) >= kill_at or proc.popen.poll() is not None, what="the sync to get going")
    proc.popen.send_signal(signal.SIGKILL)
    proc.popen.wait(30)
    present = _files(dest)
    recorded = set(SyncManifest.load(dest).files)  # the manifest with the journal replayed
    assert 0 < len(present) < len(tree), "the kill did not land mid-way"
    assert all(tree[n] == d for n, d in present.items()), "a partial file under its final name"
    assert recorded <= set(present) and len(set(present) - recorded) <= 2  # at most the files in flight
    rerun = taoflow("sync", "down", location, str(dest), "--json", log=tmp_path / "rerun.log")
    code, out = rerun.finish()
    assert code == 0, out
    report = last_json(out)
    assert report["files_transferred"] == len(tree) - len(recorded), (report, len(recorded))
    final = _files(dest)
    lost = sum(final.get(n) != d for n, d in tree.items())
    stale = leftovers(dest)
    assert lost == 0 and stale == [], (lost, stale)
    ledger.record("sync-kill-resume", trials=1, lost=lost, leaked=len(stale),
                  sums={"files_kept_across_kills": len(recorded), "files_in_trees": len(tree)})


def test_a_killed_sync_up_resumes_once_its_lease_expires(azurite, azurite_env, blob_container, tmp_path):
    tree = tree_of(9, files=160, size=60_000)
    write_tree(tmp_path / "results", tree)
    prefix = "models/app/killed"
    location = location_of(azurite_env, blob_container, prefix)
    # The upload goes through a gate that lets half the files through and holds the next: the kill
    # lands while the upload is under way, whatever the machine's speed (waiting for "half uploaded"
    # and then killing once raced with an upload that finished in between).
    with UploadGate(azurite.port, prefix, allow=len(tree) // 2) as gate:
        env = dict(os.environ, AZURE_STORAGE_CONNECTION_STRING=gate.connection_string)
        proc = taoflow("sync", "up", str(tmp_path / "results"), gate.location(blob_container.container_name, prefix),
                       "--concurrency", "2", log=tmp_path / "up.log", env=env)
        wait_until(lambda: gate.holding.is_set() or proc.popen.poll() is not None, what="the upload to reach the gate")
        assert proc.popen.poll() is None, proc.output()
        proc.popen.send_signal(signal.SIGKILL)
        proc.popen.wait(30)
    with pytest.raises(StorageError, match="not published"):
        sync_down(location, tmp_path / "reader", access=access_for(azurite_env))
    local_md5 = {n: hashlib.md5(d).hexdigest() for n, d in tree.items()}
    already = sum(1 for b in blob_container.list_blobs(name_starts_with=f"{prefix}/")
                  if b.content_settings.content_md5
                  and bytes(b.content_settings.content_md5).hex() == local_md5.get(b.name[len(prefix) + 1:]))
    rerun = taoflow("sync", "up", str(tmp_path / "results"), location, "--json", "--wait", "120",
                    log=tmp_path / "rerun.log")
    code, out = rerun.finish()
    assert code == 0, out
    report = last_json(out)
    assert already == len(tree) // 2 and report["files_transferred"] == len(tree) - already, (report, already)
    sync_down(location, tmp_path / "reader", access=access_for(azurite_env), require_published=True)
    lost = sum(d != tree.get(n) for n, d in _files(tmp_path / "reader").items()) + len(tree) - len(_files(tmp_path / "reader"))
    assert lost == 0
    ledger.record("sync-kill-resume", trials=1, lost=lost, sums={"files_kept_across_kills": already,
                                                                 "files_in_trees": len(tree)})
