"""Files in folders others write (a user's dataset, a container's results folder), read and written
the one safe way: never through a link, never blocking on a FIFO, and a write replaces a file whole.

Datasets come from users, results folders from a container, and taoflow may run as root. A
symbolic link can point at any file of the host, and a FIFO blocks whoever opens it, so entries are
listed without following them (`lstat` semantics) and files are opened with `O_NOFOLLOW |
O_NONBLOCK`, checking with `fstat` that a regular file was opened before a byte is read. A file
swapped for a link between the listing and the read is refused the same way. A write goes to a
fresh temporary name (`O_EXCL | O_NOFOLLOW`) renamed over the target: a link planted at the target
is replaced, never written through, and a reader sees the old file or the new, never half.
(Storage sync walks whole trees with descriptors of its own: `tasks.storage.localfs`.)
"""

from __future__ import annotations

import os
import stat
import uuid
from pathlib import Path

FILE, DIR, SYMLINK, SPECIAL = "file", "dir", "symlink", "special"
_NO_FOLLOW = os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


class NotRegular(OSError):
    """The path is a symbolic link or a special file; `kind` says which. Nothing was read from it."""

    def __init__(self, path: str, kind: str) -> None:
        super().__init__(f"{path} is a {describe(kind)}")
        self.kind = kind


def describe(kind: str) -> str:
    return {SYMLINK: "symbolic link", SPECIAL: "FIFO, socket or device", DIR: "folder"}.get(kind, "file")


def kind_of(entry: os.DirEntry) -> str:
    """What a directory entry is, without following it."""
    if entry.is_symlink():
        return SYMLINK
    if entry.is_dir(follow_symlinks=False):
        return DIR
    if entry.is_file(follow_symlinks=False):
        return FILE
    return SPECIAL


def path_kind(path: str) -> str | None:
    """What `path` is, without following it; None when it does not exist."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(mode):
        return SYMLINK
    if stat.S_ISDIR(mode):
        return DIR
    return FILE if stat.S_ISREG(mode) else SPECIAL


def scan(path: str) -> list[tuple[str, str]]:
    """(name, kind) of every entry of the folder `path`, links and special files included, unread."""
    with os.scandir(path) as entries:
        return [(e.name, kind_of(e)) for e in entries]


def open_regular(path: str, flags: int = os.O_RDONLY, mode: int = 0o644) -> tuple[int, int]:
    """(descriptor, size) of the regular file `path`, opened with `flags` (read-only by default; add
    `O_WRONLY | O_APPEND | O_CREAT` to append); `NotRegular` for a link or special file.

    >>> import tempfile; d = tempfile.mkdtemp(); os.symlink("/etc/hostname", d + "/link")
    >>> try:
    ...     open_regular(d + "/link")
    ... except NotRegular as exc:
    ...     print(exc.kind)
    symlink
    """
    try:
        fd = os.open(path, flags | _NO_FOLLOW, mode)
    except OSError as exc:
        if os.path.islink(path):  # O_NOFOLLOW refuses a link with ELOOP (or EMLINK on some systems)
            raise NotRegular(path, SYMLINK) from None
        raise exc
    try:
        st = os.fstat(fd)
    except OSError:
        os.close(fd)
        raise
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise NotRegular(path, DIR if stat.S_ISDIR(st.st_mode) else SPECIAL)
    return fd, st.st_size


def read_regular(path: str | os.PathLike, limit: int, *, offset: int = 0) -> bytes | None:
    """Up to `limit` bytes of a regular file from `offset`; None when it is missing, a link, a special
    file, or larger than `limit` (a size cap for files that are small by nature).

    >>> read_regular("/nonexistent", 10) is None
    True
    """
    try:
        fd, size = open_regular(os.fspath(path))
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        if size - offset > limit:
            return None
        handle.seek(offset)
        return handle.read(limit)


def write_atomic(path: str | os.PathLike, data: bytes | str, *, durable: bool = False) -> Path:
    """Replace `path` with `data` through a temporary file and a rename (`durable`: fsync first).

    >>> import tempfile; target = Path(tempfile.mkdtemp()) / "a.txt"
    >>> write_atomic(target, "hello").read_text()
    'hello'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), 0o644)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode("utf-8") if isinstance(data, str) else data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return path
