"""The data of bench/sync.py: blobs written into its private Azurite before anything is measured."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor

PREFIX = "data"


def fill(conn: str, container_name: str, blobs: int, low: int, high: int, seed: int = 1) -> int:
    """`blobs` distinct blobs of random sizes in [low, high] under PREFIX/; their total size."""
    from azure.storage.blob import BlobServiceClient

    container = BlobServiceClient.from_connection_string(conn).create_container(container_name)
    rng = random.Random(seed)
    sizes = [rng.randint(low, high) for _ in range(blobs)]
    payload = rng.randbytes(high + 4096)

    def put(i: int) -> None:
        name = f"{PREFIX}/{'images' if i % 2 else 'labels'}/{i % 20:02d}/{i:06d}.bin"
        start = (i * 977) % 4096
        container.upload_blob(name, payload[start: start + sizes[i] - 4] + i.to_bytes(4, "big"), overwrite=True)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, range(blobs)))
    return sum(sizes)


def fill_huge(conn: str, container_name: str, blobs: int, size: int) -> int:
    """`blobs` blobs of `size` bytes under PREFIX/models/, uploaded in 4 MiB blocks (as any SDK upload
    above 64 MB) with their Content-MD5 set, as `taoflow sync up` publishes a model; their total size.

    Azure stores no Content-MD5 for a blob committed from blocks unless the uploader sets one; with
    one set, a download has a whole-file MD5 to check (we and AzCopy both check it)."""
    import hashlib
    import io

    from azure.storage.blob import BlobServiceClient, ContentSettings

    class Pseudo(io.RawIOBase):
        """`size` reproducible pseudo-random bytes, made 1 MiB at a time (a 2 GiB blob is never in memory)."""

        def __init__(self, seed: int) -> None:
            self.rng, self.left = random.Random(seed), size

        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:
            n = min(len(buffer), self.left, 1 << 20)
            buffer[:n] = self.rng.randbytes(n)
            self.left -= n
            return n

    container = BlobServiceClient.from_connection_string(conn).create_container(container_name)
    for i in range(blobs):
        digest, source = hashlib.md5(), Pseudo(i)
        while chunk := source.read(1 << 20):
            digest.update(chunk)
        settings = ContentSettings(content_md5=bytearray(digest.digest()))
        container.upload_blob(f"{PREFIX}/models/{i:02d}.bin", io.BufferedReader(Pseudo(i), 1 << 20), length=size,
                              max_concurrency=4, content_settings=settings)
    return blobs * size
