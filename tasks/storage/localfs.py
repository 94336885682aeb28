"""Local folders read and written without ever following a symlink or opening a special file.

Folders taoflow syncs are not trusted: a results folder is written by a container (running as
root), a dataset by whoever made it. A symlink in one may point anywhere on the host (a trainer
leaving `model.hdf5 -> /etc/shadow` would have it published), a FIFO blocks the reader forever,
a device may never end. So, below the folder the caller names (that one is opened as named, it
is the operator's choice):

- every path is resolved one component at a time from an open directory descriptor, with
  `O_NOFOLLOW` (and `O_DIRECTORY` for folders): a symlink anywhere on the way is refused by the
  kernel, including one swapped in after the listing (tasks.storage.dirwalk);
- a file is opened with `O_NOFOLLOW | O_NONBLOCK` (a FIFO opens without waiting for a writer) and
  its type is checked on the open descriptor (`fstat`) before a byte is read;
- the listing (`scan`) uses `lstat` only and reports symlinks, FIFOs, sockets and devices
  instead of returning them; a symlink's target is shown (`readlink`), never visited;
- files are written to a temporary name in the folder's staging directory and renamed into a
  parent directory that was itself opened without following symlinks (tasks.storage.staging).

Cost: one extra `open`+`close` per directory level of each file (microseconds), no extra I/O.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import stat
import time
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

from tasks.errors import NotRegularFile, StorageBusyError, StorageError
from tasks.storage.dirwalk import DIR_FLAGS, O_CLOEXEC, open_root, parent_of, refused
from tasks.storage.staging import STAGING_DIR, Staging

_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | O_CLOEXEC
_LOCK = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | O_CLOEXEC

LOCK_FILE = ".taoflow-sync.lock"
SYNC_MANIFEST = ".taoflow-sync.json"
SYNC_JOURNAL = ".taoflow-sync.journal"
MANIFEST_TEMP = ".taoflow-sync.json.tmp"
#: A sync's own bookkeeping at the top of a local folder: never content, never listed.
RESERVED_NAMES = frozenset({LOCK_FILE, STAGING_DIR, SYNC_MANIFEST, SYNC_JOURNAL, MANIFEST_TEMP})


def kind_of(mode: int) -> str:
    """What a non-regular entry is, in words for a message.

    >>> kind_of(stat.S_IFIFO)
    'FIFO'
    """
    for test, word in ((stat.S_ISLNK, "symlink"), (stat.S_ISFIFO, "FIFO"), (stat.S_ISSOCK, "socket"),
                       (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"), (stat.S_ISDIR, "folder")):
        if test(mode):
            return word
    return "special file"


@contextmanager
def open_named(path: Path) -> Iterator[BinaryIO]:
    """A file the operator named (a symlink there is followed), opened so a FIFO cannot block us
    and read only if it is a regular file.

    >>> import tempfile; folder = Path(tempfile.mkdtemp()); _ = (folder / "spec.txt").write_text("model_config {}")
    >>> with open_named(folder / "spec.txt") as handle: handle.read()
    b'model_config {}'
    >>> os.mkfifo(folder / "pipe")
    >>> try:
    ...     with open_named(folder / "pipe") as handle: handle.read()  # would wait forever for a writer
    ... except NotRegularFile as exc: print(exc.what.replace(str(folder), "FOLDER"))
    FOLDER/pipe is a FIFO, not a regular file; it was not read
    """
    fd = os.open(path, _READ & ~os.O_NOFOLLOW)
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise NotRegularFile(f"{path} is a {kind_of(mode)}, not a regular file; it was not read",
                             fix="give a regular file or a folder")
    os.set_blocking(fd, True)
    with os.fdopen(fd, "rb") as handle:
        yield handle


@dataclass(frozen=True, slots=True)
class NotFollowed:
    """An entry that was not read: a symlink (with its target, as text) or a special file."""

    name: str
    kind: str
    target: str | None = None

    def render(self) -> str:
        return f"{self.name} ({self.kind}" + (f" -> {self.target})" if self.target is not None else ")")


@dataclass
class Scan:
    """A folder's regular files {relative name: lstat} and what was not followed."""

    files: dict[str, os.stat_result]
    not_followed: list[NotFollowed]


class LocalTree:
    """A local folder; every access below its root is symlink-free (see the module doc).

    >>> tree = LocalTree(Path("/tmp"))
    >>> tree.root
    PosixPath('/tmp')
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    # --- resolving ------------------------------------------------------------------------

    def _open_root(self) -> int:
        return open_root(self.root)

    def _refused(self, name: str, exc: OSError) -> StorageError:
        return refused(self.root, name, exc)

    def parent(self, name: str, *, create: bool = False,
               root_fd: int | None = None) -> AbstractContextManager[tuple[int, str]]:
        """(descriptor of the folder holding `name`, its last component), as a context manager
        (`tasks.storage.dirwalk.parent_of` from this root)."""
        return parent_of(self.root, name, create=create, root_fd=root_fd)

    @contextmanager
    def open_read(self, name: str) -> Iterator[BinaryIO]:
        """The regular file `name`, opened without following anything; else `NotRegularFile`.

        A missing file raises FileNotFoundError.
        """
        with self.parent(name) as (dir_fd, base):
            try:
                fd = os.open(base, _READ, dir_fd=dir_fd)
            except FileNotFoundError:
                raise
            except OSError as exc:
                raise self._refused(name, exc) from None
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            os.close(fd)
            raise NotRegularFile(
                f"{name} is now a {kind_of(mode)}, not the regular file it was when listed; it was not read",
                where=str(self.root),
                fix="something changed the folder while taoflow read it: make sure no process writes there, "
                "then run again",
            )
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb") as handle:
            yield handle

    def lstat(self, name: str) -> os.stat_result | None:
        """`lstat` of `name` resolved without following symlinks on the way; None if absent."""
        try:
            with self.parent(name) as (dir_fd, base):
                return os.stat(base, dir_fd=dir_fd, follow_symlinks=False)
        except (FileNotFoundError, NotRegularFile):
            return None

    def exists(self, name: str) -> bool:
        return self.lstat(name) is not None

    # --- listing --------------------------------------------------------------------------

    def scan(self, *, skip_top: frozenset[str] = frozenset()) -> Scan:
        """Every regular file below the root, by relative name; other entries reported, not entered."""
        result = Scan({}, [])
        fd = self._open_root()
        try:
            self._scan_dir(fd, "", result, skip_top)
        finally:
            os.close(fd)
        return result

    def _scan_dir(self, fd: int, head: str, result: Scan, skip: frozenset[str]) -> None:
        with os.scandir(fd) as entries:
            found = sorted((entry.name, entry.stat(follow_symlinks=False)) for entry in entries if entry.name not in skip)
        for base, st in found:
            name = head + base
            if stat.S_ISREG(st.st_mode):
                result.files[name] = st
            elif stat.S_ISDIR(st.st_mode):
                try:
                    sub = os.open(base, DIR_FLAGS, dir_fd=fd)
                except OSError:
                    result.not_followed.append(NotFollowed(name, "folder that changed while listed"))
                    continue
                try:
                    self._scan_dir(sub, name + "/", result, frozenset())
                finally:
                    os.close(sub)
            else:
                target = None
                if stat.S_ISLNK(st.st_mode):
                    try:
                        target = os.readlink(base, dir_fd=fd)
                    except OSError:
                        target = "?"
                result.not_followed.append(NotFollowed(name, kind_of(st.st_mode), target))

    # --- writing --------------------------------------------------------------------------

    def clear_staging(self) -> None:
        """Remove the staging folder: temporaries of a sync that was killed (call under the lock)."""
        path = self.root / STAGING_DIR
        if path.is_symlink():
            path.unlink()  # not ours: never descend into it
        shutil.rmtree(path, ignore_errors=True)

    def write_from(self, name: str, source: BinaryIO, copy: Callable[[BinaryIO, BinaryIO], object] | None = None):
        """Write `name` from `source` atomically (see `tasks.storage.staging.Staging.write`)."""
        with Staging(self.root) as staging:
            return staging.write(name, source, copy)

    def create(self, name: str, data: bytes) -> bool:
        """Place `name` only if it does not exist yet; False if it did (see `Staging.create`)."""
        with Staging(self.root) as staging:
            return staging.create(name, data)

    def unlink(self, name: str) -> bool:
        """Delete regular file `name` and its emptied parent folders; anything else is left alone."""
        try:
            with self.parent(name) as (dir_fd, base):
                if not stat.S_ISREG(os.stat(base, dir_fd=dir_fd, follow_symlinks=False).st_mode):
                    return False
                os.unlink(base, dir_fd=dir_fd)
        except (FileNotFoundError, NotRegularFile):
            return False
        parts = name.split("/")[:-1]
        while parts:
            try:
                with self.parent("/".join(parts)) as (dir_fd, base):
                    os.rmdir(base, dir_fd=dir_fd)
            except (OSError, StorageError):
                break
            parts.pop()
        return True

    # --- one sync at a time ---------------------------------------------------------------

    @contextmanager
    def lock(self, wait: float, notice: Callable[[str], None] | None = None) -> Iterator[None]:
        """Hold the folder's lock file (`flock`: the kernel drops it if the holder dies).

        Waits up to `wait` seconds for another holder, then raises `StorageBusyError`. The file
        is removed on release, so a finished folder holds no trace of it.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        root = self._open_root()
        try:
            fd = self._acquire(root, wait, notice)
            try:
                os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                          "since": time.strftime("%Y-%m-%dT%H:%M:%S")}).encode(), 0)
                yield
            finally:
                os.unlink(LOCK_FILE, dir_fd=root)  # before the flock goes: a waiter then retries on a new file
                os.close(fd)
        finally:
            os.close(root)

    def _acquire(self, root: int, wait: float, notice) -> int:
        deadline = time.monotonic() + wait
        told = False
        while True:
            try:
                fd = os.open(LOCK_FILE, _LOCK, 0o644, dir_fd=root)
            except OSError as exc:
                raise self._refused(LOCK_FILE, exc) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _holder(fd)
                os.close(fd)
            else:
                try:
                    current = os.stat(LOCK_FILE, dir_fd=root, follow_symlinks=False).st_ino
                except FileNotFoundError:
                    current = None
                if current == os.fstat(fd).st_ino:
                    return fd
                os.close(fd)  # we locked a file its last holder had just removed: try the new one
                continue
            if time.monotonic() >= deadline:
                raise StorageBusyError(
                    f"another sync is using this folder ({holder}) and did not finish within {wait:.0f} s",
                    where=str(self.root),
                    fix="wait for it to finish and run again (the lock is released the moment that process ends)",
                )
            if not told and notice is not None:
                notice(f"waiting for another sync of {self.root} to finish ({holder})")
                told = True
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))


def _holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f"pid {info['pid']} on {info['host']} since {info['since']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"
