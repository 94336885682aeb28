"""A large blob fetched as ranges in parallel into one temporary file, hashed in order as they land.

One GET streams a blob at the pace of one connection and of the one thread that receives,
hashes and writes it; for a 2 GB model that thread is the whole download. AzCopy fetches a
large blob in 8 MiB ranges on many connections at once; so does this: each range is a job in
the sync's thread pool (`RangedDownload.parts`), written with `pwrite` at its offset into a
temporary created in the staging folder (tasks.storage.staging), and the file is renamed into
place only when every range arrived and, when the blob has a Content-MD5, the whole file
matches it.

MD5 cannot be combined from parts, so the file is hashed in order, overlapped with the
download: the prefix that has fully arrived is hashed as it grows, by whichever transfer thread
extended it -- from the chunk it holds when that chunk lands exactly at the prefix's end,
otherwise read back from the file (the page cache; one `preadv` into a reused buffer). Only the
ranges that land last are hashed after the download. `hashlib` releases the GIL for buffers
this size, so the hashing runs beside the other transfers. A blob without a Content-MD5 (Azure
stores none for a blob uploaded in blocks, unless the uploader set one) has nothing to check
against and is not hashed.

The guarantees of a whole-blob GET (tasks.storage.blobio) hold for every range: it is
conditional on the listed etag (a blob replaced mid-download answers 412 on the next range: the
sync fails as transient and places nothing, never a mix of versions); a range cut mid-way is
resumed where it stopped, inside its range, at most `BODY_ATTEMPTS` times; the file is created
`O_EXCL | O_NOFOLLOW` and never visible at its name before it is complete and checked. A sync
that fails or is killed leaves the temporary in the staging folder, which the next sync (or
this one's clean-up) empties.
"""

from __future__ import annotations

import hashlib
import os
import threading
from typing import Callable

from tasks.errors import TransientStorageError

#: Bytes per ranged GET (AzCopy's download block size): few requests, and many in flight.
RANGE_SIZE = 8 << 20
#: Blobs at least this large are fetched as parallel ranges; smaller ones in one GET, since a
#: sync of many files already keeps every transfer thread busy.
RANGED_MIN_SIZE = 32 << 20
#: Read-back step when the hash catches up with ranges that landed out of order.
_HASH_STEP = 1 << 20


def damaged(name: str, md5: str, expected: str, where: str) -> TransientStorageError:
    """The error for a file whose MD5 is not the blob's (a transient fault: a retry fetches it again).

    >>> damaged("a.bin", "00", "ff", "az://c/p").what
    'a.bin arrived damaged (MD5 00, expected ff)'
    """
    return TransientStorageError(f"{name} arrived damaged (MD5 {md5}, expected {expected})", where=where)


def range_count(size: int, range_size: int | None) -> int:
    """How many ranged GETs fetch a blob of `size` bytes (1: one whole GET).

    >>> range_count(100 << 20, 8 << 20), range_count(1 << 20, 8 << 20), range_count(100 << 20, None)
    (13, 1, 1)
    """
    if not range_size or size < max(RANGED_MIN_SIZE, 2 * range_size):
        return 1
    return -(-size // range_size)


class RangedDownload:
    """One blob being fetched as ranges into one temporary; thread-safe.

    Each range's job calls `run(index, fetch)`, which streams that range through a writer
    (`fetch(start, length, writer)`). The job that completes the file (every range in, the hash
    caught up) gets True, then calls `finish` (the MD5 check) and places the temporary.
    """

    def __init__(self, size: int, range_size: int, *, md5: str | None, name: str, where: str,
                 create: Callable[[], tuple[str, int]]) -> None:
        self.size, self.md5, self.name, self.where = size, md5, name, where
        self.ranges = [(start, min(range_size, size - start)) for start in range(0, size, range_size)]
        self._create = create
        self._lock = threading.Lock()
        self._written = [0] * len(self.ranges)
        self._front = 0  # the first range not completely written
        self._left = len(self.ranges)
        self._digest = hashlib.md5(usedforsecurity=False) if md5 else None
        self._hashed = 0  # bytes of the file's prefix hashed so far
        self._hashing = False  # one thread at a time extends the hash
        self._buffer: bytearray | None = None
        self._claimed = False
        self.temp: str | None = None
        self.fd: int | None = None

    @property
    def parts(self) -> range:
        return range(len(self.ranges))

    def run(self, index: int, fetch: Callable[[int, int, "_RangeWriter"], None]) -> bool:
        """Fetch range `index` with `fetch(start, length, writer)`; True when this call completed
        the file (the caller then calls `finish`)."""
        with self._lock:
            if self.fd is None:  # the first part to start creates the temporary, at full size
                self.temp, self.fd = self._create()
                os.ftruncate(self.fd, self.size)
        start, length = self.ranges[index]
        writer = _RangeWriter(self, index, start, start + length)
        fetch(start, length, writer)
        if writer.position != start + length:
            raise TransientStorageError(f"{self.name}: a range arrived with {writer.position - start} bytes, "
                                        f"{length} expected", where=self.where, fix="run again")
        with self._lock:
            self._left -= 1
        self._catch_up()
        with self._lock:
            complete = not self._left and (self._digest is None or self._hashed == self.size)
            if complete and not self._claimed:
                self._claimed = True
                return True
        return False

    def finish(self) -> tuple[str | None, os.stat_result]:
        """(MD5 hex or None when the blob has none, fstat) of the complete temporary, its descriptor
        closed; a file whose MD5 differs from the blob's is refused."""
        assert self.fd is not None and self._claimed
        written = os.fstat(self.fd)
        os.close(self.fd)
        self.fd = None
        md5 = self._digest.hexdigest() if self._digest is not None else None
        if md5 is not None and md5 != self.md5:
            raise damaged(self.name, md5, self.md5, self.where)
        return md5, written

    def close(self) -> None:
        """Close the temporary's descriptor if it is still open (after a failure)."""
        with self._lock:
            if self.fd is not None:
                os.close(self.fd)
                self.fd = None

    # --- hashing in order -------------------------------------------------------------------

    def _landed(self, index: int, position: int, chunk: bytes) -> None:
        """`chunk` was written at `position`, the next bytes of range `index`."""
        with self._lock:
            self._written[index] += len(chunk)
            direct = self._digest is not None and not self._hashing and self._hashed == position
            if direct:
                self._hashing = True
        if direct:
            try:
                self._digest.update(chunk)
            finally:
                with self._lock:
                    self._hashed += len(chunk)
                    self._hashing = False
        self._catch_up()

    def _frontier(self) -> int:
        """End of the prefix that has completely arrived (under the lock)."""
        while self._front < len(self.ranges) and self._written[self._front] == self.ranges[self._front][1]:
            self._front += 1
        if self._front == len(self.ranges):
            return self.size
        return self.ranges[self._front][0] + self._written[self._front]

    def _catch_up(self) -> None:
        """Hash what has arrived beyond the hashed prefix, reading it back, unless another thread is."""
        if self._digest is None:
            return
        while True:
            with self._lock:
                end = self._frontier()
                if self._hashing or self._hashed >= end:
                    return
                self._hashing = True
                position = self._hashed
            try:
                if self._buffer is None:
                    self._buffer = bytearray(_HASH_STEP)
                view = memoryview(self._buffer)
                while position < end:
                    got = os.preadv(self.fd, [view[: min(_HASH_STEP, end - position)]], position)
                    if got <= 0:
                        raise OSError(f"{self.name}: the temporary file is shorter than what was written to it")
                    self._digest.update(view[:got])
                    position += got
            finally:
                with self._lock:
                    self._hashed = position
                    self._hashing = False


class _RangeWriter:
    """What one range's bytes are written through: `pwrite` at the range's next offset."""

    __slots__ = ("download", "index", "position", "end")

    def __init__(self, download: RangedDownload, index: int, position: int, end: int) -> None:
        self.download, self.index, self.position, self.end = download, index, position, end

    def write(self, chunk: bytes) -> None:
        if self.position + len(chunk) > self.end:  # never into the next range's bytes
            raise TransientStorageError(f"{self.download.name}: the storage sent more than the range asked for",
                                        where=self.download.where, fix="run again")
        view, position = memoryview(chunk), self.position
        while view:
            written = os.pwrite(self.download.fd, view, position)
            view, position = view[written:], position + written
        self.download._landed(self.index, self.position, chunk)  # noqa: SLF001 - its own download
        self.position = position
