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
from dataclasses import dataclass, field, replace
from pathlib import Path

from tasks.errors import LaunchError
from tasks.files import write_atomic
from tasks.launch.base import CancelToken, JobMonitor, JobObserver, JobOutcome, StopPolicy, pump_lines, supervise
from tasks.launch.plan import LaunchPlan
from tasks.launch.results import prepare_results, read_untrusted
from tasks.launch.watchdog import Watchdog, start_time
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
        ghost = _end_ghost(plan)
        if ghost is not None and observer.on_warning:
            observer.on_warning(f"killed process group {ghost}: an earlier attempt of this job left it running")
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
        guard = Watchdog.start("group", str(job.pgid), start_time(job.pgid))
        remember_group(plan, job.pgid)
        pump_lines(iter(lambda: process.stdout.read1(65536), b""), job.lines)
        try:
            return supervise(job, monitor, cancel, self.policy)
        finally:
            guard.dismiss()

    def assign_gpus(self, plan: LaunchPlan, ids: tuple[int, ...] | None) -> LaunchPlan:
        """TAO's wrapper runs on exactly GPUs `ids`: `--gpu_index` (it sets CUDA_VISIBLE_DEVICES from
        that, `nvidia-smi` numbering) and CUDA_VISIBLE_DEVICES for anything it starts besides."""
        if ids is None or plan.gpus is None:
            return plan.with_options(gpus_assigned=True)
        return plan.with_options(command=plan.command.with_gpu_index(ids), gpus_assigned=True,
                                 env={**plan.env, "CUDA_VISIBLE_DEVICES": ",".join(map(str, ids))})

    def evict(self, host: str, ids: tuple[int, ...]) -> list[str]:
        # A process job that outlives its flow is killed by its watchdog, or by the next attempt of
        # its run (`_end_ghost`); another run's processes are not ours to see without nvidia-smi.
        return []

    def image_digest(self, image: str) -> str | None:
        return None  # no engine: the image this process runs in is not known here

    def with_policy(self, policy: StopPolicy) -> "ProcessLauncher":
        return replace(self, policy=policy)


def _group_file(plan: LaunchPlan) -> Path:
    return plan.attempts_file.with_name(plan.attempts_file.name.replace("-attempts.jsonl", "-group"))


def remember_group(plan: LaunchPlan, pgid: int) -> None:
    """Record the job's process group beside its results folder, for the next attempt of the job."""
    write_atomic(_group_file(plan), f"{pgid} {start_time(pgid)}\n")


def _end_ghost(plan: LaunchPlan) -> int | None:
    """Kill the process group an earlier attempt of this job left running (its flow was killed and its
    watchdog with it); the group is named by its leader's pid and start time, so a reused pid is spared."""
    record = read_untrusted(_group_file(plan), limit=64)
    if record is None:
        return None
    try:
        pgid_text, started = record.data.decode().split()
        pgid = int(pgid_text)
    except ValueError:
        return None
    if not _group_members(pgid) or start_time(pgid) not in (started, "0"):
        return None
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return None
    return pgid


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
