"""Which GPUs a host lends to runs, and what a job asks for.

A GPU host declares its GPUs to the worker that runs flows on it, in the worker's environment
(the flow process inherits it):

- ``TAOFLOW_GPUS``: ``0,1,2,3`` (the GPUs this host lends, numbered as ``nvidia-smi`` numbers them
  here), ``auto`` (the default: every GPU ``nvidia-smi -L`` lists, none where it is absent),
  ``none``, or ``scheduler`` (a platform — Kubernetes' ``nvidia.com/gpu``, ACI, the docker pool's
  device request — already handed this job exactly its GPUs: taoflow books nothing and uses what
  it sees);
- ``TAOFLOW_GPU_HOST``: the host's name in the slot names (default: the machine's hostname), so
  that several workers on one host book the same slots;
- ``TAOFLOW_GPU_HANDOVER``: how a Docker container gets its GPUs, ``device-requests`` (the
  default: ``--gpus device=2,3``, the NVIDIA Container Toolkit) or ``env`` (``NVIDIA_VISIBLE_DEVICES``,
  for engines whose default runtime is ``nvidia``).

Every container that uses GPUs books them first (`tasks.launch.gpu_booking`), one Prefect global
concurrency limit of 1 per GPU, named by `slot_name`.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
from dataclasses import dataclass
from typing import Literal, Mapping

from tasks.errors import ConfigError

GPUS_ENV = "TAOFLOW_GPUS"
HOST_ENV = "TAOFLOW_GPU_HOST"
HANDOVER_ENV = "TAOFLOW_GPU_HANDOVER"
Handover = Literal["device-requests", "env"]
Mode = Literal["slots", "scheduler", "none"]


@dataclass(frozen=True)
class GpuDemand:
    """What one job asks for: `count` GPUs, exactly `pinned` ones, or `every` GPU the host lends.

    >>> GpuDemand(2).describe(), GpuDemand(1, pinned=(3,)).describe(), GpuDemand(1, every=True).describe()
    ('2 GPUs', 'GPU 3', 'every GPU of the host')
    """

    count: int
    pinned: tuple[int, ...] = ()
    every: bool = False

    def describe(self) -> str:
        if self.every:
            return "every GPU of the host"
        if self.pinned:
            return ("GPU " if len(self.pinned) == 1 else "GPUs ") + ",".join(map(str, self.pinned))
        return f"{self.count} GPU" + ("s" if self.count != 1 else "")


@dataclass(frozen=True)
class GpuHost:
    """This host's declaration: its slot name, the GPUs it lends, and how containers get them.

    >>> GpuHost.from_env({"TAOFLOW_GPUS": "0,1", "TAOFLOW_GPU_HOST": "dgx-a"})
    GpuHost(name='dgx-a', ids=(0, 1), mode='slots', handover='device-requests')
    >>> GpuHost.from_env({"TAOFLOW_GPUS": "scheduler"}).mode
    'scheduler'
    """

    name: str
    ids: tuple[int, ...]
    mode: Mode
    handover: Handover = "device-requests"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "GpuHost":
        env = os.environ if env is None else env
        name = (env.get(HOST_ENV) or "").strip() or socket.gethostname()
        handover = (env.get(HANDOVER_ENV) or "device-requests").strip().lower()
        if handover not in ("device-requests", "env"):
            raise ConfigError(f"{HANDOVER_ENV}={handover!r} is not a way to hand GPUs to a container",
                              where=HANDOVER_ENV, fix="use device-requests (the default) or env")
        declared = (env.get(GPUS_ENV) or "auto").strip().lower()
        if declared in ("scheduler", "none"):
            return cls(name, (), declared, handover)  # type: ignore[arg-type]
        ids = discover_gpus() if declared == "auto" else parse_gpu_ids(declared)
        return cls(name, ids, "slots" if ids else "none", handover)  # type: ignore[arg-type]

    def check(self, demand: GpuDemand) -> None:
        """A demand this host can never meet is a mistake now, not a wait forever."""
        missing = [i for i in demand.pinned if i not in self.ids]
        if missing or demand.count > len(self.ids):
            raise ConfigError(
                f"the job needs {demand.describe()} but host {self.name!r} lends GPUs "
                f"{','.join(map(str, self.ids)) or 'none'} ({GPUS_ENV})",
                where=GPUS_ENV,
                fix="lower num_gpus, pin GPUs the host lends (gpu_index), or declare the host's GPUs in the "
                f"worker's environment: {GPUS_ENV}=0,1,…",
            )

    def wanted(self, demand: GpuDemand) -> GpuDemand:
        """The demand with `every` resolved to this host's GPUs."""
        return GpuDemand(len(self.ids), self.ids) if demand.every else demand


def slot_name(host: str, index: int) -> str:
    """The global concurrency limit (limit 1) that stands for GPU `index` of `host`.

    >>> slot_name("DGX-A.corp", 3)
    'taoflow-gpu-dgx-a-corp-3'
    """
    return f"taoflow-gpu-{_slug(host)}-{index}"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:60] or "host"


def parse_gpu_ids(text: str) -> tuple[int, ...]:
    """`0,1, 3` -> (0, 1, 3); anything else is one clear error.

    >>> parse_gpu_ids("0, 1,3")
    (0, 1, 3)
    """
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts or not all(p.isdigit() for p in parts) or len(set(parts)) != len(parts):
        raise ConfigError(f"{GPUS_ENV}={text!r} is not a list of distinct GPU numbers", where=GPUS_ENV,
                          fix=f"e.g. {GPUS_ENV}=0,1 (as nvidia-smi -L numbers them), auto, none or scheduler")
    return tuple(int(p) for p in parts)


def discover_gpus() -> tuple[int, ...]:
    """The GPUs `nvidia-smi` lists here; none where it is absent or fails."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return ()
    try:
        out = subprocess.run([smi, "--query-gpu=index", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    return tuple(int(line) for line in out.split() if line.strip().isdigit())
