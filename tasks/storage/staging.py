"""Atomic writes into a local folder: a temporary in its staging folder, renamed into place.

Nothing is written through a symlink (tasks.storage.dirwalk): the temporary is created with
`O_CREAT | O_EXCL | O_NOFOLLOW` in the staging folder, opened without following; the folder it
is renamed into is reached one component at a time from the root's descriptor with
`O_NOFOLLOW | O_DIRECTORY`. A reader never sees a partial file, and a file is only placed
once `copy` returned (a download's MD5 checked).

A `Staging` holds the descriptors of the root and of the staging folder for a whole batch
(a sync writes thousands of files): per file it costs the temporary's creation, the walk to
its folder and the rename, instead of also re-opening the root and the staging folder.
"""

from __future__ import annotations

import itertools
import os
import shutil
from pathlib import Path
from typing import BinaryIO, Callable

from tasks.storage.dirwalk import DIR_FLAGS, open_root, parent_of, refused

#: The folder (at the top of the folder written to) that holds the temporaries until their rename.
STAGING_DIR = ".taoflow-sync-tmp"

_CREATE = os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
#: Temporary names: unique in this process (one counter), and across processes (the pid).
_serial = itertools.count()


class Staging:
    """The staging folder of the folder `root`, open for a batch of writes; a context manager.

    >>> import io, tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> with Staging(root) as staging: _ = staging.write("a/b.txt", io.BytesIO(b"hi"))
    >>> (root / "a/b.txt").read_bytes()
    b'hi'
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._root: int | None = None
        self._staging: int | None = None

    def __enter__(self) -> "Staging":
        root = open_root(self.root)
        try:
            try:
                os.mkdir(STAGING_DIR, 0o700, dir_fd=root)
            except FileExistsError:
                pass
            self._staging = os.open(STAGING_DIR, DIR_FLAGS, dir_fd=root)
        except OSError as exc:
            os.close(root)
            raise refused(self.root, STAGING_DIR, exc) from None
        self._root = root
        return self

    def __exit__(self, *exc) -> None:
        for fd in (self._staging, self._root):
            if fd is not None:
                os.close(fd)
        self._root = self._staging = None

    def create(self, name: str, data: bytes) -> bool:
        """Place `name` with `data` only if nothing is there yet (a hard link cannot replace): False
        if something was. Complete or absent, never half-written, for any reader.

        >>> import tempfile
        >>> with Staging(Path(tempfile.mkdtemp())) as staging:
        ...     staging.create("v1/claim.json", b"a"), staging.create("v1/claim.json", b"b")
        (True, False)
        """
        temp, fd = self.temporary(os.O_WRONLY)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            with parent_of(self.root, name, create=True, root_fd=self._root) as (dir_fd, base):
                try:
                    os.link(temp, base, src_dir_fd=self._staging, dst_dir_fd=dir_fd, follow_symlinks=False)
                except FileExistsError:
                    return False
                os.fsync(dir_fd)
            return True
        finally:
            os.unlink(temp, dir_fd=self._staging)

    def write(self, name: str, source: BinaryIO | None, copy: Callable[[BinaryIO, BinaryIO], object] | None = None):
        """Write `name` atomically from `source` (or with `copy(source, out)`): (what `copy` returned,
        lstat of the new file). On any error the temporary is removed and nothing is placed."""
        temp, fd = self.temporary(os.O_WRONLY)
        placed = False
        try:
            with os.fdopen(fd, "wb") as out:
                value = copy(source, out) if copy else shutil.copyfileobj(source, out, 1 << 20)
                out.flush()
                written = os.fstat(out.fileno())
            self.place(temp, name)
            placed = True
            return value, written
        finally:
            if not placed:
                self.discard(temp)

    def temporary(self, mode: int = os.O_RDWR) -> tuple[str, int]:
        """(name, descriptor) of a new, empty temporary in the staging folder (`mode`: O_WRONLY or O_RDWR)."""
        temp = f"{os.getpid()}.{next(_serial)}"
        return temp, os.open(temp, _CREATE | mode, 0o666, dir_fd=self._staging)

    def place(self, temp: str, name: str) -> None:
        """Rename the complete temporary `temp` to `name`, replacing what is there."""
        # A symlink already at `name` is replaced, not followed; a symlinked folder on the way is refused.
        with parent_of(self.root, name, create=True, root_fd=self._root) as (dir_fd, base):
            os.replace(temp, base, src_dir_fd=self._staging, dst_dir_fd=dir_fd)

    def discard(self, temp: str) -> None:
        """Remove the temporary `temp` if it is still there."""
        try:
            os.unlink(temp, dir_fd=self._staging)
        except FileNotFoundError:
            pass
