"""The two places a sync reads from or writes to: a blob prefix and a local directory.

Both speak the same small vocabulary (list, fetch, put, delete, read, write) in terms of
names *relative to the location*, so the sync logic does not care which one it has.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import threading
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO, Callable, Protocol

from tasks.errors import NotRegularFile, StorageError, StorageNotFoundError
from tasks.storage.azure_errors import Target, azure_errors
from tasks.storage.blobio import get_blob, list_pages
from tasks.storage.localfs import RESERVED_NAMES, LocalTree, NotFollowed, kind_of, open_named
from tasks.storage.locations import Location
from tasks.storage.locks import PUBLISHING_MARKER, BlobPublication, LocalPublication, Publication
from tasks.storage.quick_list import QuickLister
from tasks.storage.ranged import RANGE_SIZE

CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class Entry:
    """One file/blob: its name relative to the location, size, version tag and MD5 (hex) if known."""

    name: str
    size: int
    etag: str
    md5: str | None = None


@dataclass
class Listing:
    """What a location holds. `single` means the location names one file, not a folder.

    `not_followed`: local symlinks and special files that were left out (never read)."""

    entries: dict[str, Entry]
    single: bool = False
    not_followed: list[NotFollowed] = field(default_factory=list)


Notice = Callable[[str], None]


class Store(Protocol):
    location: Location
    target: Target
    range_size: int | None
    """Large files are fetched as parallel ranges of this size (tasks.storage.ranged); None: whole."""

    def list(self) -> Listing: ...
    def entry(self, name: str) -> Entry | None: ...
    def fetch(self, entry: Entry, out: BinaryIO) -> str: ...
    def fetch_range(self, entry: Entry, start: int, length: int, out: BinaryIO) -> None: ...
    def put(self, data: BinaryIO, size: int, name: str, md5: str) -> None: ...
    def delete(self, name: str) -> None: ...
    def read(self, name: str, limit: int) -> bytes | None: ...
    def write(self, name: str, data: bytes) -> None: ...
    def create(self, name: str, data: bytes) -> bool: ...
    def publication(self, body: bytes, wait: float, notice: Notice | None) -> AbstractContextManager[Publication]: ...


def stream_md5(source: BinaryIO) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    while chunk := source.read(CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def too_large(name: str, size: int, limit: int, where: str) -> StorageError:
    """The error for a small-by-nature file (a marker, a card, a pointer) found far larger.

    >>> too_large("champion.json", 200 << 20, 1 << 20, "az://models/app").what
    'champion.json is 209,715,200 bytes, more than the 1,048,576 taoflow reads of it; it was not read'
    """
    return StorageError(f"{name} is {size:,} bytes, more than the {limit:,} taoflow reads of it; it was not read",
                        where=where, fix=f"{name} is not as taoflow writes it (damaged or planted): restore it, or "
                                         "remove it and publish again")


def copy_hashing(chunks, out: BinaryIO) -> str:
    """Write `chunks` to `out`; the MD5 (hex) of what was written."""
    digest = hashlib.md5(usedforsecurity=False)
    for chunk in chunks:
        digest.update(chunk)
        out.write(chunk)
    return digest.hexdigest()


class BlobStore:
    """A prefix in a blob container, through the sync SDK."""

    range_size = RANGE_SIZE

    def __init__(self, location: Location, open_container: Callable[[], object], credential_source: str,
                 quick: QuickLister | None = None) -> None:
        """`open_container` makes the SDK's container client, on first use; `quick` lists without it."""
        self.location = location
        self.target = Target(location.account, location.container, credential_source, endpoint=location.account_url)
        self._open_container = open_container
        self._container = None
        self._opening = threading.Lock()
        self._quick = quick

    @property
    def container(self):
        """The SDK's container client (opened, and the SDK imported, the first time it is needed)."""
        if self._container is None:
            with self._opening:
                if self._container is None:
                    self._container = self._open_container()
        return self._container

    def _full(self, name: str) -> str:
        return f"{self.location.prefix}/{name}" if self.location.prefix else name

    def list(self) -> Listing:
        prefix = self.location.prefix
        entries: dict[str, Entry] = {}
        exact: Entry | None = None
        found = self._quick.list(prefix) if self._quick is not None and self._container is None else None
        if found is None:  # no quick listing, or it did not go plainly well: the SDK's, with its retries and errors
            with azure_errors(self.target, f"listing {self.location.display}"):
                found = list(list_pages(self.container, prefix))
        for name, size, etag, md5 in found:
            if prefix and name == prefix:
                exact = Entry(prefix.rsplit("/", 1)[-1], size, etag, md5)
            elif not prefix or name.startswith(prefix + "/"):
                relative = name[len(prefix) + 1:] if prefix else name
                entries[relative] = Entry(relative, size, etag, md5)
        # A name that is both a blob and a folder is read as the folder.
        self._single = exact is not None and not entries
        if self._single:
            return Listing({exact.name: exact}, single=True)
        return Listing(entries)

    def _blob_name(self, name: str) -> str:
        return self.location.prefix if self._single_name(name) else self._full(name)

    def _blob(self, name: str):
        return self.container.get_blob_client(self._blob_name(name))

    def _single_name(self, name: str) -> bool:
        return getattr(self, "_single", False) and self.location.prefix.rsplit("/", 1)[-1] == name

    def entry(self, name: str) -> Entry | None:
        """Blob `name` as a listing would show it (one request), None when absent."""
        from azure.core.exceptions import ResourceNotFoundError

        with azure_errors(self.target, f"reading the properties of {name}"):
            try:
                found = self._blob(name).get_blob_properties()
            except ResourceNotFoundError as exc:
                if getattr(exc, "error_code", None) == "ContainerNotFound":
                    raise
                return None
        md5 = found.content_settings.content_md5
        return Entry(name, found.size, found.etag, bytes(md5).hex() if md5 else None)

    def fetch(self, entry: Entry, out: BinaryIO) -> str:
        with azure_errors(self.target, f"downloading {entry.name}"):
            # Conditional on the listed etag: a blob replaced since the listing fails (412) instead of mixing versions.
            return get_blob(self.container, self._blob_name(entry.name), entry.etag, entry.size, out,
                            where=self.location.display)

    def fetch_range(self, entry: Entry, start: int, length: int, out: BinaryIO) -> None:
        """Write `length` bytes of the listed blob from `start` to `out` (conditional on the listed etag)."""
        with azure_errors(self.target, f"downloading {entry.name}"):
            get_blob(self.container, self._blob_name(entry.name), entry.etag, entry.size, out,
                     where=self.location.display, start=start, length=length, hashed=False)

    def read_range(self, entry: Entry, start: int, length: int) -> bytes | None:
        """`length` bytes of the listed blob from `start` (one ranged GET, conditional on the listed
        etag: a blob replaced since the listing is a transient error); None when it is gone."""
        from azure.core.exceptions import HttpResponseError

        out = io.BytesIO()
        with azure_errors(self.target, f"reading {entry.name}"):
            try:
                get_blob(self.container, self._blob_name(entry.name), entry.etag, entry.size, out,
                         where=self.location.display, start=start, length=length)
            except HttpResponseError as exc:
                if exc.status_code != 404 or exc.error_code == "ContainerNotFound":
                    raise
                return None
        return out.getvalue()

    def put(self, data: BinaryIO, size: int, name: str, md5: str) -> None:
        from azure.storage.blob import ContentSettings

        with azure_errors(self.target, f"uploading {name}"):
            self._blob(name).upload_blob(
                data,
                length=size,
                overwrite=True,
                max_concurrency=1,
                content_settings=ContentSettings(content_md5=bytearray(bytes.fromhex(md5))),
            )

    def delete(self, name: str) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        with azure_errors(self.target, f"deleting {name}"):
            try:
                self._blob(name).delete_blob()
            except ResourceNotFoundError:
                pass

    def read(self, name: str, limit: int) -> bytes | None:
        """The content of blob `name` (None when absent); `too_large` above `limit` bytes."""
        found = self.read_tagged(name, limit)
        return found[0] if found is not None else None

    def read_tagged(self, name: str, limit: int) -> tuple[bytes, str] | None:
        """(content, ETag) of blob `name`, None when absent. Its size is asked first (nothing is
        downloaded of a larger one), then one ranged read of at most `limit` + 1 bytes, whose own
        ETag is returned: a blob replaced in between is read whole as the new version, or refused."""
        from azure.core.exceptions import ResourceNotFoundError

        blob = self._blob(name)
        with azure_errors(self.target, f"reading {name}"):
            try:
                size = blob.get_blob_properties().size
                if size > limit:
                    raise too_large(name, size, limit, self._where(name))
                download = blob.download_blob(offset=0, length=limit + 1) if size else blob.download_blob()
                data = download.readall()
            except ResourceNotFoundError as exc:
                if getattr(exc, "error_code", None) == "ContainerNotFound":
                    raise
                return None
            if len(data) > limit:
                raise too_large(name, download.properties.size, limit, self._where(name))
            return data, download.properties.etag

    def _where(self, name: str) -> str:
        return replace(self.location, prefix=self._blob_name(name), sas=None).display

    def write(self, name: str, data: bytes) -> None:
        with azure_errors(self.target, f"writing {name}"):
            self._blob(name).upload_blob(data, overwrite=True)

    def create(self, name: str, data: bytes) -> bool:
        """Write `name` only if no blob has it (If-None-Match: *): False if one did."""
        from azure.core.exceptions import HttpResponseError, ResourceExistsError

        with azure_errors(self.target, f"creating {name}"):
            try:
                self._blob(name).upload_blob(data, overwrite=False)
            except ResourceExistsError:
                return False
            except HttpResponseError as exc:
                if exc.status_code in (409, 412):
                    return False
                raise
        return True

    def publication(self, body: bytes, wait: float, notice: Notice | None = None) -> BlobPublication:
        """The right to publish at this prefix: a lease on its publishing marker (see tasks.storage.locks)."""
        return BlobPublication(self._blob(PUBLISHING_MARKER), body, wait, self.target, notice)


class LocalStore:
    """A local directory (or one file) seen as a store; etags are size + modification time.

    The directory (or file) is used as named; nothing below it is followed or opened unless it
    is a regular file (tasks.storage.localfs). Our bookkeeping at its top is never content.
    """

    range_size = None  # a local copy is one sequential read per file

    def __init__(self, location: Location) -> None:
        self.location = location
        self.root: Path = location.path
        self.target = Target(None, None, "local filesystem")
        self.tree = LocalTree(self.root)

    def _root_mode(self) -> int | None:
        try:
            return self.root.stat().st_mode  # follows: the operator named this path
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageError(f"cannot read {self.root}: {exc.strerror}", fix="check the local path") from None

    def _single(self) -> bool:
        mode = self._root_mode()
        return mode is not None and not stat.S_ISDIR(mode)

    @staticmethod
    def _entry(name: str, st) -> Entry:
        return Entry(name, st.st_size, f"{st.st_mtime_ns:x}-{st.st_size:x}")

    def list(self) -> Listing:
        mode = self._root_mode()
        if mode is None:
            raise StorageNotFoundError(f"{self.root} does not exist", fix="check the local path")
        if stat.S_ISREG(mode):
            return Listing({self.root.name: self._entry(self.root.name, self.root.stat())}, single=True)
        if not stat.S_ISDIR(mode):
            raise StorageError(f"{self.root} is a {kind_of(mode)}, not a file or a folder; it was not read",
                               fix="give a regular file or a folder")
        scan = self.tree.scan(skip_top=RESERVED_NAMES)
        return Listing({n: self._entry(n, st) for n, st in scan.files.items()}, not_followed=scan.not_followed)

    def entry(self, name: str) -> Entry | None:
        """Regular file `name` below the root, reached without following a link; None when absent
        (`NotRegularFile` for a link or special file on the way or in its place)."""
        try:
            with self.tree.parent(name) as (dir_fd, base):
                found = os.stat(base, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return None
        if not stat.S_ISREG(found.st_mode):
            raise NotRegularFile(f"{name} is a {kind_of(found.st_mode)}, not a regular file; it was not read",
                                 where=str(self.root), fix="replace it by the regular file")
        return self._entry(name, found)

    def open(self, name: str) -> AbstractContextManager[BinaryIO]:
        """The regular file `name`, opened without following symlinks below the root."""
        return open_named(self.root) if self._single() else self.tree.open_read(name)

    def fetch(self, entry: Entry, out: BinaryIO) -> str:
        with self.open(entry.name) as source:
            return copy_hashing(iter(lambda: source.read(CHUNK), b""), out)

    def fetch_range(self, entry: Entry, start: int, length: int, out: BinaryIO) -> None:
        with self.open(entry.name) as source:
            source.seek(start)
            while length > 0 and (chunk := source.read(min(CHUNK, length))):
                out.write(chunk)
                length -= len(chunk)

    def put(self, data: BinaryIO, size: int, name: str, md5: str) -> None:
        self.tree.write_from(name, data)

    def delete(self, name: str) -> None:
        self.tree.unlink(name)

    def read(self, name: str, limit: int) -> bytes | None:
        """The regular file `name` below the root (never through a link), None when absent;
        `too_large` above `limit` bytes."""
        if self._single():
            return None
        try:
            with self.tree.open_read(name) as handle:
                size = os.fstat(handle.fileno()).st_size
                data = handle.read(limit + 1) if size <= limit else b""
        except FileNotFoundError:
            return None
        if size > limit or len(data) > limit:  # the second: it grew while read
            raise too_large(name, max(size, len(data)), limit, str(self.root / name))
        return data

    def write(self, name: str, data: bytes) -> None:
        self.tree.write_from(name, io.BytesIO(data))

    def create(self, name: str, data: bytes) -> bool:
        """Write `name` only if nothing is there yet: False if something was."""
        self.root.mkdir(parents=True, exist_ok=True)
        return self.tree.create(name, data)

    def publication(self, body: bytes, wait: float, notice: Notice | None = None) -> LocalPublication:
        """The right to publish into this folder: its lock file, then the publishing marker."""
        return LocalPublication(self.tree, body, wait, notice)
