"""Hostile local folders and a kernel witness that nothing outside them was touched.

`OutsideWatch` puts inotify watches on a folder tree (a stand-in for /etc and the rest of the
host) and reports every open, read, write, create or delete the kernel sees there, by anyone:
a sync that followed a symlink into it shows up as IN_OPEN/IN_ACCESS, a write through a
symlinked folder as IN_CREATE/IN_MODIFY. A content snapshot is compared as well.
"""

from __future__ import annotations

import ctypes
import os
import socket
import struct
from dataclasses import dataclass, field
from pathlib import Path

_IN_ACCESS, _IN_MODIFY, _IN_ATTRIB, _IN_OPEN = 0x1, 0x2, 0x4, 0x20
_IN_MOVED_FROM, _IN_MOVED_TO, _IN_CREATE, _IN_DELETE = 0x40, 0x80, 0x100, 0x200
_MASK = _IN_ACCESS | _IN_MODIFY | _IN_ATTRIB | _IN_OPEN | _IN_MOVED_FROM | _IN_MOVED_TO | _IN_CREATE | _IN_DELETE
_NAMES = {_IN_ACCESS: "read", _IN_MODIFY: "write", _IN_ATTRIB: "attrib", _IN_OPEN: "open",
          _IN_MOVED_FROM: "moved-from", _IN_MOVED_TO: "moved-to", _IN_CREATE: "create", _IN_DELETE: "delete"}
_EVENT = struct.Struct("iIII")
_libc = ctypes.CDLL(None, use_errno=True)


def snapshot(root: Path) -> dict[str, bytes]:
    """Every regular file below root with its content (symlinks not followed)."""
    out = {}
    for d, _, names in os.walk(root):
        for name in names:
            path = Path(d, name)
            if path.is_file() and not path.is_symlink():
                out[str(path)] = path.read_bytes()
    return out


@dataclass
class OutsideWatch:
    """inotify watches on every folder below `root` (made before the code under test runs)."""

    root: Path
    fd: int = -1
    wds: dict[int, str] = field(default_factory=dict)
    before: dict[str, bytes] = field(default_factory=dict)

    def __enter__(self) -> "OutsideWatch":
        self.before = snapshot(self.root)
        folders = [d for d, _, _ in os.walk(self.root)]  # listed before watching: listing is an open
        self.fd = _libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        assert self.fd >= 0, os.strerror(ctypes.get_errno())
        for d in folders:
            wd = _libc.inotify_add_watch(self.fd, os.fsencode(d), _MASK)
            assert wd >= 0, os.strerror(ctypes.get_errno())
            self.wds[wd] = d
        return self

    def events(self) -> list[str]:
        """What happened below root since the watch began ("open /x/shadow", ...)."""
        found = []
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return found
            offset = 0
            while offset < len(data):
                wd, mask, _, size = _EVENT.unpack_from(data, offset)
                name = data[offset + _EVENT.size: offset + _EVENT.size + size].rstrip(b"\0").decode()
                offset += _EVENT.size + size
                kinds = [word for bit, word in _NAMES.items() if mask & bit]
                if kinds:
                    found.append(f"{'/'.join(kinds)} {os.path.join(self.wds.get(wd, '?'), name)}")

    def touched(self) -> list[str]:
        """Events plus content changes; empty when nothing outside was read or written."""
        seen = self.events()  # first: reading the snapshot below makes events of its own
        after = snapshot(self.root)
        self.events()  # drop the snapshot's own reads
        return seen + [f"changed {p}" for p in set(self.before) | set(after) if self.before.get(p) != after.get(p)]

    def __exit__(self, *exc) -> None:
        os.close(self.fd)


SECRET = b"root:$6$host-secret-that-must-never-be-published:19000:0:99999:7:::\n"


def make_outside(root: Path) -> Path:
    """A stand-in for the host outside the folder: a 'shadow' file and a folder of secrets."""
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "shadow").write_bytes(SECRET)
    (root / "etc" / "keys").mkdir()
    (root / "etc" / "keys" / "id_rsa").write_bytes(SECRET * 2)
    return root


def plant_hostile_entries(folder: Path, outside: Path) -> dict[str, str]:
    """Symlinks (absolute, relative, to a folder, dangling, nested), a FIFO, a socket and, when
    the kernel lets us, a device, among ordinary files. Returns {name: kind} of what was planted."""
    planted = {
        "weights/model.hdf5": "symlink",  # the reproduced incident: a host file published as the model
        "etc": "symlink",
        "dangling.ckzip": "symlink",
        "sub/deeper/id_rsa": "symlink",
        "status.pipe": "FIFO",
        "trainer.sock": "socket",
    }
    (folder / "weights").mkdir(parents=True, exist_ok=True)
    (folder / "sub" / "deeper").mkdir(parents=True, exist_ok=True)
    os.symlink(outside / "etc" / "shadow", folder / "weights" / "model.hdf5")
    os.symlink(outside / "etc", folder / "etc")
    os.symlink(folder / "no-such-file", folder / "dangling.ckzip")
    os.symlink(os.path.relpath(outside / "etc" / "keys" / "id_rsa", folder / "sub" / "deeper"),
               folder / "sub" / "deeper" / "id_rsa")
    os.mkfifo(folder / "status.pipe")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(folder / "trainer.sock"))
    sock.close()
    try:
        os.mknod(folder / "zero.dev", 0o600 | 0o020000, os.makedev(1, 5))  # a character device like /dev/zero
        planted["zero.dev"] = "character device"
    except OSError:
        pass  # no CAP_MKNOD here: the other kinds still run
    return planted
