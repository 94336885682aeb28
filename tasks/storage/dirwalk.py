"""Reaching a name below a local folder one component at a time, never through a symlink.

Both halves of a symlink-free folder build on this walk: reading and listing
(`tasks.storage.localfs.LocalTree`) and atomic writing (`tasks.storage.staging.Staging`). Each
folder on the way is opened from its parent's descriptor with `O_NOFOLLOW | O_DIRECTORY`, so a
symlink anywhere on the way is refused by the kernel, including one swapped in after a listing.
"""

from __future__ import annotations

import errno
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from tasks.errors import NotRegularFile, StorageError

O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
#: How every folder below the root is opened: a symlink or a non-folder fails (ELOOP, ENOTDIR).
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | O_CLOEXEC


def open_root(root: Path) -> int:
    """A descriptor of the folder the caller named (opened as named: that one is the operator's choice)."""
    return os.open(root, os.O_RDONLY | os.O_DIRECTORY | O_CLOEXEC)


def refused(root: Path, name: str, exc: OSError) -> StorageError:
    """The error for `name` below `root` that could not be opened: a symlink on the way, or else why.

    >>> print(refused(Path("/data"), "a/b.png", OSError(errno.ELOOP, "loop")))
    /data: a/b.png: a part of this path is a symlink or not a folder; taoflow does not follow symlinks
      how to fix: replace the symlink by the real file or folder (or remove it) and run again
    """
    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
        return NotRegularFile(
            f"{name}: a part of this path is a symlink or not a folder; taoflow does not follow symlinks",
            where=str(root),
            fix="replace the symlink by the real file or folder (or remove it) and run again",
        )
    return StorageError(f"cannot open {name}: {exc.strerror or exc}", where=str(root),
                        fix="check that the folder exists and is readable")


@contextmanager
def parent_of(root: Path, name: str, *, create: bool = False, root_fd: int | None = None) -> Iterator[tuple[int, str]]:
    """(descriptor of the folder holding `name`, its last component); folders made when `create`.

    Walks from `root_fd` (a descriptor of the root held by the caller, left open) or from a
    fresh open of `root`. A missing folder on the way raises FileNotFoundError; a symlink
    on the way, `NotRegularFile`.

    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> with parent_of(root, "a/b/c.txt", create=True) as (fd, base): base, sorted(os.listdir(fd))
    ('c.txt', [])
    >>> (root / "a/b").is_dir()
    True
    """
    parts = name.split("/")
    fd = open_root(root) if root_fd is None else root_fd
    try:
        for part in parts[:-1]:
            nxt = _step(root, fd, part, name, create)
            if fd != root_fd:
                os.close(fd)
            fd = nxt
        yield fd, parts[-1]
    finally:
        if fd != root_fd:
            os.close(fd)


def _step(root: Path, fd: int, part: str, name: str, create: bool) -> int:
    """Descriptor of sub-folder `part` of `fd`, never through a symlink."""
    try:
        try:
            nxt = os.open(part, DIR_FLAGS, dir_fd=fd)
        except FileNotFoundError:
            if not create:
                raise
            try:
                os.mkdir(part, 0o777, dir_fd=fd)
            except FileExistsError:
                pass  # another thread made it first
            nxt = os.open(part, DIR_FLAGS, dir_fd=fd)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise refused(root, name, exc) from None
    return nxt
