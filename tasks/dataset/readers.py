"""Where the validator reads a dataset from: one set of rules, two readers.

The rules (kitti_folders, pairs, images, labels) ask a `DatasetReader` what is in a folder, for an
image's bytes by offset and for a label file; they never touch the filesystem or the network
themselves, so a folder on disk and the same files in Blob Storage give the same codes, messages
and report. `LocalReader` reads files (never through a link, never opening a FIFO: tasks.files);
`BlobReader` (tasks.dataset.blob_reader) reads blobs where they lie, with HTTP ranges.

Paths are strings under the reader's `root` joined with "/", as findings show them.
"""

from __future__ import annotations

import io
import os
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from tasks.dataset.images import HEAD_BYTES, FileSource, ImageSource, decode_fully
from tasks.files import open_regular, path_kind, scan


class DatasetReader(Protocol):
    #: The dataset root as findings show it (a local path, or a location without its SAS).
    root: str
    #: Bytes asked for first when an image header is probed.
    head_bytes: int
    #: Whether the rules may run in worker processes (the reader is picklable and holds no connection).
    forkable: bool
    #: Reads it keeps in flight at once when not forkable (threads).
    concurrency: int

    def is_dir(self, path: str) -> bool:
        """Whether `path` is a folder (the root as named by the operator: a local link to it is followed)."""
        ...

    def kind(self, path: str) -> str | None:
        """FILE, DIR, SYMLINK or SPECIAL (tasks.files), without following it; None when absent."""
        ...

    def scan(self, path: str) -> list[tuple[str, str]]:
        """(name, kind) of every entry of the folder `path`, unread."""
        ...

    def open_image(self, path: str) -> AbstractContextManager[ImageSource]:
        """The image's bytes by offset; `NotRegular` for a link or special file, `OSError` when unreadable."""
        ...

    def open_label(self, path: str) -> AbstractContextManager[tuple[BinaryIO, int]]:
        """(unbuffered binary file at its start, size) of a label file; `NotRegular` / `OSError` as
        `open_image`."""
        ...

    def decode(self, path: str) -> str | None:
        """Decode the whole image (`--deep`): why it fails, or None."""
        ...

    def stats(self) -> dict[str, int]:
        """What was read from a remote store ({"requests", "bytes"}); empty for local files."""
        ...


@dataclass(frozen=True)
class LocalReader:
    """A dataset folder on this machine.

    >>> import tempfile; root = tempfile.mkdtemp(); _ = open(root + "/a.txt", "w").write("car")
    >>> reader = LocalReader(root)
    >>> reader.scan(root)
    [('a.txt', 'file')]
    >>> with reader.open_label(root + "/a.txt") as (fh, size):
    ...     fh.read(), size
    (b'car', 3)
    """

    root: str
    head_bytes: int = HEAD_BYTES
    forkable: bool = True
    concurrency: int = 1

    def is_dir(self, path: str) -> bool:
        return os.path.isdir(path)

    def kind(self, path: str) -> str | None:
        return path_kind(path)

    def scan(self, path: str) -> list[tuple[str, str]]:
        return scan(path)

    def open_image(self, path: str) -> FileSource:
        return FileSource(path)

    def open_label(self, path: str) -> "LabelFile":
        return LabelFile(path)

    def decode(self, path: str) -> str | None:
        try:
            fd, _ = open_regular(path)
        except OSError as exc:  # gone or swapped for a link since the probe
            return f"{type(exc).__name__}: {exc}"
        with os.fdopen(fd, "rb") as fh:
            return decode_fully(fh)

    def stats(self) -> dict[str, int]:
        return {}


class LabelFile:
    """A local label file as (unbuffered file, size), opened without following a link, closed when
    its `with` block ends (a class, like `FileSource`: one per pair)."""

    __slots__ = ("file", "size")

    def __init__(self, path: str) -> None:
        fd, self.size = open_regular(path)
        self.file = io.FileIO(fd, "rb", closefd=True)

    def __enter__(self) -> tuple[BinaryIO, int]:
        return self.file, self.size

    def __exit__(self, *exc: object) -> None:
        self.file.close()
