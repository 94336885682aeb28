"""The guarantees of the fast download path (tasks.storage.blobio, staging, transport), on real Azurite.

A body cut mid-way is resumed from where it stopped, and only a bounded number of times; a blob
replaced after the listing is refused (the GET is conditional on the listed etag); the bytes
are written as stored (a gzip-encoded blob is not decompressed, so it matches its MD5); an
unchanged re-sync writes nothing locally.
"""

from __future__ import annotations

import gzip
import io
import os
import random

import pytest

from tasks.errors import TransientStorageError
from tasks.storage import StorageAccess, open_store, sync_down, transport
from tasks.storage.blobio import BODY_ATTEMPTS
from tasks.storage.localfs import SYNC_JOURNAL, SYNC_MANIFEST
from tasks.storage.staging import STAGING_DIR
from tests.fixtures.services import AZURITE_KEY
from tests.storage.cut_proxy import CutProxy
from tests.storage.helpers import access_for, location_of, nested_tree, read_tree, upload_tree

pytestmark = pytest.mark.services
BIG = 3_000_000


@pytest.fixture
def cut_proxy(azurite):
    proxy = CutProxy(azurite.port)
    yield proxy
    proxy.close()


def through(proxy: CutProxy, container, prefix: str) -> tuple[str, StorageAccess]:
    endpoint = f"http://127.0.0.1:{proxy.port}/devstoreaccount1"
    conn = f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={AZURITE_KEY};BlobEndpoint={endpoint};"
    return f"{endpoint}/{container.container_name}/{prefix}", StorageAccess(connection_string=conn, sdk_retries=1)


def test_a_body_cut_mid_way_is_resumed_from_where_it_stopped(blob_container, cut_proxy, workdir):
    tree = {"model/big.bin": random.Random(1).randbytes(BIG), "small.txt": b"x"}
    upload_tree(blob_container, "data", tree)
    location, access = through(cut_proxy, blob_container, "data")
    cut_proxy.target, cut_proxy.cut_after, cut_proxy.cuts = "data/model/big.bin", 1_000_000, BODY_ATTEMPTS - 1

    report = sync_down(location, workdir / "dst", access=access, concurrency=2)

    assert read_tree(workdir / "dst") == tree
    assert report.bytes_transferred == BIG + 1
    gets = [ranged for line, ranged in cut_proxy.seen if line.startswith("GET ") and "big.bin" in line]
    assert len(gets) == BODY_ATTEMPTS, gets
    assert gets[0] is None, "the first GET asks for the whole blob"
    starts = [int(r.removeprefix("bytes=").rstrip("-")) for r in gets[1:]]
    assert all(0 < s < BIG for s in starts) and starts == sorted(starts), f"each retry resumes further on: {gets}"


def test_a_ranged_read_cut_mid_way_resumes_inside_its_range(blob_container, cut_proxy):
    """`read_range` (the validator's in-place reads): the same resume, never past the range's end."""
    data = random.Random(3).randbytes(BIG)
    upload_tree(blob_container, "data", {"big.bin": data})
    location, access = through(cut_proxy, blob_container, "data")
    store = open_store(location, access)
    entry = store.list().entries["big.bin"]
    cut_proxy.target, cut_proxy.cut_after, cut_proxy.cuts = "data/big.bin", 400_000, 1

    assert store.read_range(entry, 1_000_000, 1_500_000) == data[1_000_000:2_500_000]
    assert store.read_range(entry, BIG - 256, 256) == data[-256:]
    gets = [ranged for line, ranged in cut_proxy.seen if line.startswith("GET ") and "big.bin" in line]
    first, resumed, tail = gets
    assert first == "bytes=1000000-2499999" and tail == f"bytes={BIG - 256}-{BIG - 1}"
    start, end = map(int, resumed.removeprefix("bytes=").split("-"))
    assert 1_000_000 < start < 2_500_000 and end == 2_499_999, gets
    blob_container.upload_blob("data/big.bin", b"replaced", overwrite=True)
    with pytest.raises(TransientStorageError, match="412"):  # conditional on the listed etag
        store.read_range(entry, 0, 1024)


def test_a_body_cut_every_time_fails_as_transient_and_places_nothing(blob_container, cut_proxy, workdir):
    upload_tree(blob_container, "data", {"big.bin": random.Random(2).randbytes(BIG)})
    location, access = through(cut_proxy, blob_container, "data")
    cut_proxy.target, cut_proxy.cut_after, cut_proxy.cuts = "data/big.bin", 500_000, 100

    with pytest.raises(TransientStorageError, match="connection broke 3 times"):
        sync_down(location, workdir / "dst", access=access)

    gets = [line for line, _ in cut_proxy.seen if line.startswith("GET ") and "big.bin" in line]
    assert len(gets) == BODY_ATTEMPTS, "bounded: no more attempts than BODY_ATTEMPTS"
    assert sorted(os.listdir(workdir / "dst")) == [SYNC_MANIFEST], "no file placed, no temporary left"
    assert not (workdir / "dst" / STAGING_DIR).exists()


def test_a_blob_replaced_after_the_listing_is_refused_not_mixed(azurite, blob_container):
    upload_tree(blob_container, "data", {"a.bin": b"version one" * 1000})
    store = open_store(location_of(azurite, blob_container, "data"), access_for(azurite))
    entry = store.list().entries["a.bin"]
    blob_container.upload_blob("data/a.bin", b"version two" * 1000, overwrite=True)

    out = io.BytesIO()
    with pytest.raises(TransientStorageError, match="412"):
        store.fetch(entry, out)
    assert out.getvalue() == b"", "not a byte of the new version was taken for the listed one"


def test_a_gzip_encoded_blob_arrives_as_stored_and_matches_its_md5(azurite, blob_container, workdir):
    from azure.storage.blob import ContentSettings

    stored = gzip.compress(b"label line\n" * 5000)
    blob_container.upload_blob("data/labels.txt.gz", stored, content_settings=ContentSettings(content_encoding="gzip"))

    sync_down(location_of(azurite, blob_container, "data"), workdir / "dst", access=access_for(azurite))

    assert (workdir / "dst/labels.txt.gz").read_bytes() == stored


def test_an_unchanged_resync_writes_nothing_locally(azurite, blob_container, workdir):
    upload_tree(blob_container, "data", nested_tree(seed=11))
    location = location_of(azurite, blob_container, "data")
    sync_down(location, workdir / "dst", access=access_for(azurite))
    manifest = os.stat(workdir / "dst" / SYNC_MANIFEST)

    again = sync_down(location, workdir / "dst", access=access_for(azurite))

    assert again.files_transferred == 0
    after = os.stat(workdir / "dst" / SYNC_MANIFEST)
    assert (after.st_ino, after.st_mtime_ns) == (manifest.st_ino, manifest.st_mtime_ns), "manifest not rewritten"
    assert not (workdir / "dst" / SYNC_JOURNAL).exists() and not (workdir / "dst" / STAGING_DIR).exists()


def test_without_azure_cores_private_response_class_every_request_goes_through_requests(
        azurite, blob_container, workdir, monkeypatch):
    """The direct path leans on a private azure-core module; a release without it must only cost speed."""
    tree = nested_tree(seed=12)
    upload_tree(blob_container, "data", tree)
    monkeypatch.setattr(transport, "RestRequestsTransportResponse", None)
    sent, through_requests = [], transport.RequestsTransport.send
    monkeypatch.setattr(transport.RequestsTransport, "send",
                        lambda self, request, **kw: sent.append(request.method) or through_requests(self, request, **kw))
    report = sync_down(location_of(azurite, blob_container, "data"), workdir / "dst", access=access_for(azurite))
    assert report.files_transferred == len(tree) and read_tree(workdir / "dst") == tree
    assert sent.count("GET") >= len(tree)
