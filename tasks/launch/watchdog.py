"""A job must not outlive the flow process that owns it: a watchdog removes it when that process dies.

A container belongs to dockerd and a process group started with `start_new_session` to nobody:
a flow process killed with `kill -9` leaves both running, still training on GPUs its lease no
longer covers. So every job gets a small guard process of its own session (a signal to the flow's
process group does not reach it) that holds the read end of a pipe whose write end only the flow
process has. When the flow process dies, however it dies, the kernel closes that end: the guard
reads end-of-file and removes the container (or kills the process group), then exits. A job that
ended normally dismisses its guard first ("done"), and the guard leaves without touching anything.

    python -m tasks.launch.watchdog container <id> [<docker base url>]
    python -m tasks.launch.watchdog group <pgid> <leader start time>
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

_DONE = b"done\n"


class Watchdog:
    """The flow's side of a guard: dismiss it when the job ended normally.

    >>> guard = Watchdog.start("group", str(2**22 + 12345), "0")
    >>> guard.dismiss()
    """

    def __init__(self, process: subprocess.Popen) -> None:
        self.process = process

    @classmethod
    def start(cls, kind: str, *args: str) -> "Watchdog":
        process = subprocess.Popen(
            [sys.executable, "-m", "tasks.launch.watchdog", kind, *args],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, close_fds=True, cwd=str(Path(__file__).resolve().parents[2]),
        )
        return cls(process)

    def dismiss(self) -> None:
        """The job is over and cleaned up: the guard leaves without acting."""
        try:
            if self.process.stdin is not None:
                self.process.stdin.write(_DONE)
                self.process.stdin.close()
            self.process.wait(10)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()


def start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot (`/proc/PID/stat` field 22): with the pid
    it names one process, even after the pid is reused."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "0"
    return stat.rsplit(")", 1)[1].split()[19]


def _kill_group(pgid: int, started: str) -> None:
    if start_time(pgid) not in (started, "0"):
        return  # the leader's pid now names another process: its group is not ours
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _remove_container(ident: str, base_url: str | None) -> None:
    import docker

    client = docker.DockerClient(base_url=base_url) if base_url else docker.from_env()
    try:
        client.containers.get(ident).remove(force=True)
    except docker.errors.DockerException:
        pass


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C of the terminal is the flow's to handle
    told = sys.stdin.buffer.read()  # returns at end-of-file: the flow process closed it or died
    if told.startswith(_DONE):
        return 0
    kind, ident, *rest = argv
    if kind == "container":
        _remove_container(ident, rest[0] if rest else None)
    elif kind == "group":
        _kill_group(int(ident), rest[0] if rest else "0")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
