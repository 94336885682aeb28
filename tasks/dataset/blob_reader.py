"""`BlobReader`: a dataset validated where it lies in Blob Storage, without downloading it.

One listing of the root (every location kind: az://, https://ACCOUNT.blob..., abfss://, azureml://,
through `open_store`, so the endpoint rules, credentials and retries are the storage layer's)
gives the folders and files the rules ask about. An image's format and size are in its first
bytes, so each image costs a ranged GET of `HEAD_RANGE` bytes (more only when a JPEG's frame
header lies beyond them) and one of its last bytes (the end marker); a label file is read whole
(one GET), or in bounded ranges when it is larger than any real label file. Every GET is
conditional on the listed etag: a blob replaced since the listing is a transient error, never a
mix of two versions. `stats()` counts the GETs and the bytes they returned, for tests and the
benchmark (docs/benchmarks.md).
"""

from __future__ import annotations

import errno
import io
import os
import threading
from contextlib import contextmanager
from typing import BinaryIO, Iterator

from tasks.dataset.images import decode_fully
from tasks.dataset.labels import LINE_BUFFER, WHOLE_FILE_BYTES
from tasks.files import DIR, FILE
from tasks.storage import StorageAccess, open_store, parse_location
from tasks.storage.stores import BlobStore, Entry

#: The first range of an image header: a JPEG's JFIF header, quantisation tables and frame header
#: (~200-300 bytes as Pillow, OpenCV and libjpeg write them), a PNG's IHDR (33 bytes). An EXIF or
#: ICC block before the frame header costs one more range, from the marker after it.
HEAD_RANGE = 1024
#: Ranged reads in flight at once (threads; the store's connection pool is sized to match).
CONCURRENCY = 32
#: A label file larger than `WHOLE_FILE_BYTES` is read in ranges this long (memory stays bounded).
LABEL_RANGE = LINE_BUFFER


class BlobReader:
    """The blobs under a location, seen as a dataset folder (a `DatasetReader`)."""

    forkable = False

    def __init__(self, location: str, access: StorageAccess | None = None, *, head_bytes: int = HEAD_RANGE,
                 concurrency: int = CONCURRENCY) -> None:
        loc = parse_location(location)
        #: Findings name blobs under the location as the user wrote it, its SAS left out.
        self.root = loc.display.split("?", 1)[0].rstrip("/")
        self.head_bytes = head_bytes
        self.concurrency = concurrency
        self.store: BlobStore = open_store(loc, access, pool_size=concurrency + 4)
        self._files: dict[str, Entry] | None = None
        self._folders: dict[str, list[tuple[str, str]]] = {}
        self._lock = threading.Lock()
        self._requests = 0
        self._bytes = 0

    # --- the listing, as folders ---------------------------------------------------------------

    def _tree(self) -> dict[str, Entry]:
        if self._files is None:
            listing = self.store.list()
            files = {} if listing.single else listing.entries  # a blob named like the root is no folder
            folders: dict[str, list[tuple[str, str]]] = {"": []} if files else {}
            for rel in sorted(files):
                parent = ""
                parts = rel.split("/")
                for part in parts[:-1]:
                    folder = f"{parent}/{part}" if parent else part
                    if folder not in folders:
                        folders[folder] = []
                        folders[parent].append((part, DIR))
                    parent = folder
                folders[parent].append((parts[-1], FILE))
            self._folders, self._files = folders, files
        return self._files

    def _rel(self, path: str) -> str:
        if path == self.root:
            return ""
        if not path.startswith(self.root + "/"):
            raise ValueError(f"{path} is not under {self.root}")
        return path[len(self.root) + 1:].rstrip("/")

    def is_dir(self, path: str) -> bool:
        self._tree()
        return self._rel(path) in self._folders

    def kind(self, path: str) -> str | None:
        files = self._tree()
        rel = self._rel(path)
        if rel in self._folders:
            return DIR
        return FILE if rel in files else None

    def scan(self, path: str) -> list[tuple[str, str]]:
        self._tree()
        return list(self._folders.get(self._rel(path), []))

    # --- reading ---------------------------------------------------------------------------------

    def _entry(self, path: str) -> Entry:
        entry = self._tree().get(self._rel(path))
        if entry is None:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
        return entry

    def read_range(self, entry: Entry, start: int, length: int) -> bytes:
        """`length` bytes of `entry` from `start`, counted; `FileNotFoundError` when it is gone."""
        data = self.store.read_range(entry, start, length)
        with self._lock:
            self._requests += 1
            self._bytes += len(data or b"")
        if data is None:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), entry.name)
        return data

    @contextmanager
    def open_image(self, path: str) -> Iterator["RangeSource"]:
        yield RangeSource(self, self._entry(path))

    @contextmanager
    def open_label(self, path: str) -> Iterator[tuple[BinaryIO, int]]:
        entry = self._entry(path)
        if entry.size <= WHOLE_FILE_BYTES:
            yield io.BytesIO(self.read_range(entry, 0, entry.size) if entry.size else b""), entry.size
        else:
            yield RangeFile(self, entry), entry.size

    def decode(self, path: str) -> str | None:
        try:
            entry = self._entry(path)
            data = self.read_range(entry, 0, entry.size) if entry.size else b""
        except FileNotFoundError as exc:
            return f"{type(exc).__name__}: {exc}"
        return decode_fully(io.BytesIO(data))

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"requests": self._requests, "bytes": self._bytes}


class RangeSource:
    """An image blob as an `ImageSource`: ranged GETs, the last range kept (a tail inside it, or a
    small file read whole by the first range, costs no second request)."""

    def __init__(self, reader: BlobReader, entry: Entry) -> None:
        self.reader, self.entry, self.size = reader, entry, entry.size
        self._kept = (0, b"")

    def read(self, offset: int, n: int) -> bytes:
        n = min(n, self.size - offset)
        if n <= 0 or offset < 0:
            return b""
        start, data = self._kept
        if start <= offset and offset + n <= start + len(data):
            return data[offset - start: offset - start + n]
        data = self.reader.read_range(self.entry, offset, n)
        self._kept = (offset, data)
        return data


class RangeFile(io.RawIOBase):
    """A large label blob as a seekable raw file, read `LABEL_RANGE` bytes per request."""

    def __init__(self, reader: BlobReader, entry: Entry) -> None:
        super().__init__()
        self.reader, self.entry, self.pos = reader, entry, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.entry.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def tell(self) -> int:
        return self.pos

    def readinto(self, buffer) -> int:
        n = min(len(buffer), self.entry.size - self.pos, LABEL_RANGE)
        if n <= 0:
            return 0
        data = self.reader.read_range(self.entry, self.pos, n)
        buffer[: len(data)] = data
        self.pos += len(data)
        return len(data)
