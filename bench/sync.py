"""Benchmark: our sync_down against plain SDK loops and prefect-azure, on Azurite direct and behind latency.

One run: start a private Azurite, fill a container with N blobs of 20-200 KB, then for each
setting ((a) direct, (b) through bench/sync_proxy.py adding 20 ms per request) time:
a sequential SDK loop, a 16-thread SDK loop, prefect-azure's download_folder_to_path, our
first sync and our unchanged re-sync. Ratios are speed relative to each baseline, measured in
the same run.

    .venv/bin/python bench/sync.py            # 2,000 blobs, about 218 MB
    .venv/bin/python bench/sync.py --blobs 200
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tasks.storage import StorageAccess, sync_down  # noqa: E402
from tests.fixtures.services import AZURITE_KEY, Azurite, free_port, wait_for_port  # noqa: E402

PREFIX = "data"
CONTAINER = "bench"


def connection_string(port: int) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={AZURITE_KEY};"
        f"BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
    )


def fill(conn: str, blobs: int, seed: int = 1) -> int:
    from azure.storage.blob import BlobServiceClient

    container = BlobServiceClient.from_connection_string(conn).create_container(CONTAINER)
    rng = random.Random(seed)
    sizes = [rng.randint(20_000, 200_000) for _ in range(blobs)]
    payload = rng.randbytes(200_000)

    def put(i: int) -> None:
        name = f"{PREFIX}/{'images' if i % 2 else 'labels'}/{i % 20:02d}/{i:06d}.bin"
        container.upload_blob(name, payload[: sizes[i]] + i.to_bytes(4, "big"), overwrite=True)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, range(blobs)))
    return sum(sizes) + 4 * blobs


def _write(container, name: str, dest: Path) -> None:
    path = dest / name
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as out:
        container.download_blob(name).readinto(out)


def _container(conn: str, pool: int = 10):
    import requests
    from azure.storage.blob import BlobServiceClient

    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_maxsize=pool)
    session.mount("http://", adapter)
    return BlobServiceClient.from_connection_string(conn, session=session).get_container_client(CONTAINER)


def sdk_loop(conn: str, dest: Path, threads: int) -> None:
    container = _container(conn, pool=threads + 2)
    names = [b.name for b in container.list_blobs(name_starts_with=PREFIX + "/")]
    if threads == 1:
        for name in names:
            _write(container, name, dest)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda n: _write(container, n, dest), names))


def prefect_azure(conn: str, dest: Path) -> None:
    from prefect_azure import AzureBlobStorageContainer, AzureBlobStorageCredentials

    block = AzureBlobStorageContainer(
        container_name=CONTAINER, credentials=AzureBlobStorageCredentials(connection_string=conn)
    )
    block.download_folder_to_path(PREFIX, dest)


def timed(fn, *args) -> float:
    started = time.perf_counter()
    fn(*args)
    return time.perf_counter() - started


def run_setting(label: str, port: int, total: int, work: Path, concurrency: int) -> list[tuple]:
    conn = connection_string(port)
    location = f"http://127.0.0.1:{port}/devstoreaccount1/{CONTAINER}/{PREFIX}"
    access = StorageAccess(connection_string=conn)
    rows = []
    cases = [
        ("sequential SDK loop", lambda d: sdk_loop(conn, d, 1)),
        ("16-thread SDK loop", lambda d: sdk_loop(conn, d, 16)),
        ("prefect-azure download_folder_to_path", lambda d: prefect_azure(conn, d)),
    ]
    times = {}
    for name, fn in cases:
        dest = work / f"{label}-{len(times)}"
        times[name] = timed(fn, dest)
        shutil.rmtree(dest)
        print(f"  [{label}] {name}: {times[name]:.2f} s", flush=True)
    ours_dest = work / f"{label}-ours"
    first = timed(lambda: sync_down(location, ours_dest, access=access, concurrency=concurrency))
    print(f"  [{label}] taoflow sync_down (first): {first:.2f} s", flush=True)
    again = sync_down(location, ours_dest, access=access, concurrency=concurrency)
    assert again.bytes_transferred == 0, "an unchanged re-sync must transfer nothing"
    shutil.rmtree(ours_dest)
    for name, seconds in times.items():
        rows.append((label, name, seconds, total / seconds / 1e6, seconds / first))
    rows.append((label, "taoflow sync_down, first", first, total / first / 1e6, 1.0))
    rows.append((label, "taoflow sync_down, unchanged re-sync", again.seconds, 0.0, again.seconds / first))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blobs", type=int, default=2000)
    parser.add_argument("--delay", type=float, default=0.02, help="seconds added per request in setting (b)")
    parser.add_argument("--concurrency", type=int, default=None, help="our concurrency (default: sync_down's)")
    args = parser.parse_args()
    from tasks.storage.sync import DEFAULT_CONCURRENCY

    concurrency = args.concurrency or DEFAULT_CONCURRENCY
    binary = str(ROOT / ".cache/tools/node_modules/.bin/azurite-blob")
    work = Path(tempfile.mkdtemp(prefix="taoflow-bench-sync-"))
    azurite = Azurite(binary=binary, location=work / "azurite")
    azurite.location.mkdir()
    proxy = None
    try:
        azurite.start()
        total = fill(azurite.connection_string, args.blobs)
        print(f"{args.blobs} blobs, {total / 1e6:.1f} MB in Azurite; our concurrency {concurrency}", flush=True)
        rows = run_setting("a", azurite.port, total, work, concurrency)
        proxy_port = free_port()
        proxy = subprocess.Popen(
            [sys.executable, str(ROOT / "bench/sync_proxy.py"), str(proxy_port), str(azurite.port), str(args.delay)]
        )
        if not wait_for_port(proxy_port, 10):
            raise SystemExit("the latency proxy did not start")
        rows += run_setting("b", proxy_port, total, work, concurrency)
    finally:
        if proxy is not None:
            proxy.kill()
            proxy.wait()
        azurite.stop()
        shutil.rmtree(work, ignore_errors=True)

    print()
    print("setting  method                                   seconds    MB/s   time / our first sync")
    for label, name, seconds, rate, ratio in rows:
        print(f"  {label}      {name:<40} {seconds:7.2f} {rate:7.1f}   {ratio:6.2f}")
    print("\n(a) = Azurite direct; (b) = +%d ms per request. A time ratio of 2.00 means we are 2x faster;"
          " for the re-sync it is the share of our first sync's time." % round(args.delay * 1000))


if __name__ == "__main__":
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    main()
