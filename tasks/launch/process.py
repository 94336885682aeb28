"""`ProcessLauncher`: the same job as a subprocess, for a flow already running inside the TAO
image (Kubernetes or ACI work pools), with the same streaming, stopping and judgement.

No engine means no bind mounts: the argv's in-container paths are translated to the host
paths of the plan's mounts (identity when the inputs were staged at the layout's paths).
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tasks.errors import LaunchError
from tasks.launch.base import CancelToken, JobMonitor, JobObserver, JobOutcome, StopPolicy, pump_lines, supervise
from tasks.launch.plan import LaunchPlan
from tasks.launch.results import prepare_results
from tasks.redact import Redactor


@dataclass
class ProcessLauncher:
    """Runs a `LaunchPlan`'s argv as a child process group and supervises it."""

    #: Replaces argv[0] (`detectnet_v2`), e.g. a full path; None looks it up on PATH.
    executable: str | None = None
    policy: StopPolicy = field(default_factory=StopPolicy)

    def argv(self, plan: LaunchPlan) -> list[str]:
        argv = [self.executable or plan.command.argv[0]]
        for arg in plan.command.argv[1:]:
            host = plan.mounts.host_path(arg) if arg.startswith("/") else None
            argv.append(str(host) if host is not None else arg)
        return argv

    def run(self, plan: LaunchPlan, observer: JobObserver | None = None, cancel: CancelToken | None = None) -> JobOutcome:
        observer = observer or JobObserver()
        results = plan.results_host_dir
        if results is not None:
            # The process runs as us: no hand-over of the folder to another user.
            prepare_results(results, run_id=plan.run_id, resume=plan.resume, user=None)
        plan.mounts.check_sources()
        log_file = plan.mounts.host_path(plan.command.log_file) if plan.command.log_file else None
        monitor = JobMonitor(plan, observer, Redactor(plan.secrets), log_file=log_file)
        argv = self.argv(plan)
        try:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=os.environ | dict(plan.env),
                start_new_session=True,  # its own process group: stopped as one, no orphans
            )
        except OSError as exc:
            raise LaunchError(
                f"cannot start {argv[0]}: {exc.strerror}",
                where=argv[0],
                fix="run inside the TAO image (detectnet_v2 on PATH) or use the Docker launcher",
            ) from None
        job = ProcessJob(process)
        pump_lines(iter(lambda: process.stdout.read1(65536), b""), job.lines)
        return supervise(job, monitor, cancel, self.policy)


def _group_members(pgid: int) -> list[tuple[int, str]]:
    """(pid, command line) of every live process in the group, from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) != pgid:
                continue
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
        except (OSError, ProcessLookupError):
            continue
        members.append((int(entry.name), cmdline))
    return members


class ProcessJob:
    def __init__(self, process: subprocess.Popen) -> None:
        self.process = process
        self.pgid = process.pid  # start_new_session makes the child its group's leader
        self.lines: "queue.Queue[str | None]" = queue.Queue()

    def wait(self, timeout: float) -> int | None:
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        return 128 - code if code < 0 else code  # a signal death reads like a shell's 128+N

    def interrupt(self, pattern: str) -> None:
        # Only the trainer: TAO's wrapper dies on SIGUSR1, the trainer checkpoints and saves.
        for pid, cmdline in _group_members(self.pgid):
            if pattern in cmdline:
                os.kill(pid, signal.SIGUSR1)

    def terminate(self, grace: float) -> None:
        self._signal_group(signal.SIGTERM)
        try:
            self.process.wait(grace)
        except subprocess.TimeoutExpired:
            self._signal_group(signal.SIGKILL)

    def cleanup(self) -> None:
        if self.process.poll() is None:
            self._signal_group(signal.SIGKILL)
            self.process.wait()
        # Children of a finished leader may linger in the group (a sleeping helper): end them too.
        self._signal_group(signal.SIGKILL)
        if self.process.stdout:
            self.process.stdout.close()

    def _signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.pgid, sig)
        except (ProcessLookupError, PermissionError):
            pass
