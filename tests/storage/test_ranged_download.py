"""Large blobs fetched as parallel ranges (tasks.storage.ranged), on real Azurite.

The range size is made small (256 KB) so a few-MB blob is split into a dozen ranges; the code
path is the one a 2 GB model takes. Each guarantee of the whole-blob GET is checked again for
ranges: intact content; every range conditional on the listed etag; a range cut mid-way resumed
inside that range; a blob replaced mid-download refused, nothing placed; an MD5 mismatch refused;
a blob without a Content-MD5 (committed from blocks) downloaded and recorded without one.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import signal
import subprocess
import sys

import pytest

from tasks.errors import TransientStorageError
from tasks.storage import ranged, sync_down
from tasks.storage.localfs import STAGING_DIR, SYNC_MANIFEST
from tasks.storage.manifest import SyncManifest
from tasks.storage.stores import BlobStore
from tests.storage.cut_proxy import CutProxy
from tests.storage.helpers import access_for, location_of, read_tree, upload_tree
from tests.storage.test_transfer_guarantees import through

pytestmark = pytest.mark.services
RANGE = 256 * 1024
SIZE = 3_100_000  # 12 ranges, the last one short
BLOB = "data/model/weights.bin"


@pytest.fixture(autouse=True)
def small_ranges(monkeypatch):
    monkeypatch.setattr(BlobStore, "range_size", RANGE)
    monkeypatch.setattr(ranged, "RANGED_MIN_SIZE", 2 * RANGE)


@pytest.fixture
def cut_proxy(azurite):
    proxy = CutProxy(azurite.port)
    yield proxy
    proxy.close()


def blob_gets(proxy: CutProxy) -> list[tuple[str | None, str | None]]:
    """(x-ms-range, If-Match) of every GET of the large blob, in order."""
    return [(ranged_, condition) for (line, ranged_), condition in zip(proxy.seen, proxy.conditions)
            if line.startswith("GET ") and "weights.bin" in line]


def span(header: str) -> tuple[int, int]:
    start, end = header.removeprefix("bytes=").split("-")
    return int(start), int(end)


def manifest_record(dest, name: str) -> dict:
    return json.loads((dest / SYNC_MANIFEST).read_text())["files"][name]


def test_a_large_blob_arrives_whole_from_conditional_ranges(blob_container, cut_proxy, workdir):
    data = random.Random(1).randbytes(SIZE)
    tree = {"model/weights.bin": data, "labels.txt": b"car\n"}
    upload_tree(blob_container, "data", tree)
    location, access = through(cut_proxy, blob_container, "data")
    etag = blob_container.get_blob_client(BLOB).get_blob_properties().etag.strip('"')
    events = []

    report = sync_down(location, workdir / "dst", access=access, concurrency=4, on_progress=events.append)

    assert read_tree(workdir / "dst") == tree
    gets = blob_gets(cut_proxy)
    count = ranged.range_count(SIZE, RANGE)
    assert count == 12 and len(gets) == count, gets
    assert sorted(span(r) for r, _ in gets) == [(s, min(s + RANGE, SIZE) - 1) for s in range(0, SIZE, RANGE)]
    assert {condition for _, condition in gets} == {etag}, "every range is conditional on the listed etag"
    assert report.bytes_transferred == SIZE + 4 and report.files_transferred == 2
    assert (events[-1].files_done, events[-1].bytes_done) == (2, SIZE + 4), "progress counts the file once"
    assert manifest_record(workdir / "dst", "model/weights.bin")["md5"] == hashlib.md5(data).hexdigest()
    assert not (workdir / "dst" / STAGING_DIR).exists()
    again = sync_down(location, workdir / "dst", access=access)
    assert again.files_transferred == 0


def test_a_range_cut_mid_way_resumes_inside_that_range(blob_container, cut_proxy, workdir):
    data = random.Random(2).randbytes(SIZE)
    upload_tree(blob_container, "data", {"model/weights.bin": data})
    location, access = through(cut_proxy, blob_container, "data")
    cut_proxy.target, cut_proxy.cut_after, cut_proxy.cuts = "weights.bin", 100_000, 1

    sync_down(location, workdir / "dst", access=access, concurrency=4)

    assert (workdir / "dst/model/weights.bin").read_bytes() == data
    spans = [span(r) for r, _ in blob_gets(cut_proxy)]
    assert len(spans) == ranged.range_count(SIZE, RANGE) + 1, spans
    resumed = [(s, e) for s, e in spans if s % RANGE]
    assert len(resumed) == 1, spans
    start, end = resumed[0]
    first = start - start % RANGE
    assert (first, end) in spans and end == min(first + RANGE, SIZE) - 1, "resumed where it stopped, in its range"


def test_a_blob_replaced_mid_download_is_refused_and_nothing_placed(blob_container, cut_proxy, workdir):
    upload_tree(blob_container, "data", {"model/weights.bin": random.Random(3).randbytes(SIZE)})
    location, access = through(cut_proxy, blob_container, "data")
    seen = []

    def replace_after_the_first_range(line: str) -> None:
        if line.startswith("GET ") and "weights.bin" in line:
            seen.append(line)
            if len(seen) == 2:  # the first range was served; the blob changes before the second
                blob_container.upload_blob(BLOB, random.Random(4).randbytes(SIZE), overwrite=True)

    cut_proxy.before_forward = replace_after_the_first_range
    with pytest.raises(TransientStorageError, match="412"):
        sync_down(location, workdir / "dst", access=access, concurrency=1)

    assert len(seen) >= 2, "the first range was served before the change"
    assert sorted(os.listdir(workdir / "dst")) == [SYNC_MANIFEST], "nothing placed, no temporary left"
    assert "model/weights.bin" not in json.loads((workdir / "dst" / SYNC_MANIFEST).read_text())["files"]


def test_a_large_blob_whose_content_does_not_match_its_md5_is_refused(azurite, blob_container, workdir):
    from azure.storage.blob import ContentSettings

    upload_tree(blob_container, "data", {"model/weights.bin": random.Random(5).randbytes(SIZE)})
    wrong = bytearray(hashlib.md5(b"something else").digest())
    blob_container.get_blob_client(BLOB).set_http_headers(ContentSettings(content_md5=wrong))

    with pytest.raises(TransientStorageError, match="arrived damaged"):
        sync_down(location_of(azurite, blob_container, "data"), workdir / "dst", access=access_for(azurite))

    assert sorted(os.listdir(workdir / "dst")) == [SYNC_MANIFEST]


def test_a_large_blob_committed_from_blocks_has_no_md5_to_check_and_arrives(azurite, blob_container, workdir):
    from azure.storage.blob import BlobBlock

    data = random.Random(6).randbytes(SIZE)
    blob = blob_container.get_blob_client(BLOB)
    blocks = []
    for i, start in enumerate(range(0, SIZE, 1 << 20)):
        block_id = base64.b64encode(f"{i:06d}".encode()).decode()
        blob.stage_block(block_id, data[start:start + (1 << 20)])
        blocks.append(BlobBlock(block_id))
    blob.commit_block_list(blocks)
    assert blob.get_blob_properties().content_settings.content_md5 is None, "Azurite, like Azure, stores none"

    sync_down(location_of(azurite, blob_container, "data"), workdir / "dst", access=access_for(azurite))

    assert (workdir / "dst/model/weights.bin").read_bytes() == data
    assert manifest_record(workdir / "dst", "model/weights.bin")["md5"] is None, "nothing was checked, none recorded"


def test_a_sync_killed_mid_download_places_nothing_and_the_next_one_completes(blob_container, cut_proxy, workdir):
    """A real process with the real range size (a 40 MB blob: five 8 MiB ranges), killed while an
    answer is held mid-way by the proxy: no file at its name, nothing recorded; the next sync
    clears the temporary and completes."""
    data = random.Random(7).randbytes(40 << 20)
    upload_tree(blob_container, "data", {"model/weights.bin": data, "small.txt": b"s"})
    location, access = through(cut_proxy, blob_container, "data")
    cut_proxy.target, cut_proxy.stall_after = "weights.bin", 3 << 20
    dest = workdir / "dst"
    env = {**os.environ, "AZURE_STORAGE_CONNECTION_STRING": access.connection_string}
    with open(workdir / "killed.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "taoflow", "sync", "down", location, str(dest),
                                 "--concurrency", "4"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        assert cut_proxy.stalled.wait(60), (workdir / "killed.log").read_text()
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        cut_proxy.release.set()
        proc.kill()

    assert not (dest / "model/weights.bin").exists(), "nothing placed at its name before it is complete"
    assert os.listdir(dest / STAGING_DIR), "the killed sync's temporary is in the staging folder"
    assert "model/weights.bin" not in SyncManifest.load(dest).files
    cut_proxy.stall_after = None
    report = sync_down(location, dest, access=access)
    assert (dest / "model/weights.bin").read_bytes() == data
    assert report.files_transferred >= 1 and not (dest / STAGING_DIR).exists()
