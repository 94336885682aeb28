"""`LaunchPlan`: everything a launcher will do, decided and printable before any engine is touched.

`taoflow plan` prints it; the launchers only carry it out. Secrets stay inside: the display
form masks the key and lists environment variable names, never their values.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Mapping

from tasks.errors import ConfigError
from tasks.launch.command import Command
from tasks.launch.gpus import GpuDemand
from tasks.launch.mounts import MountPlan, TaoMounts
from tasks.launch.slots import Slot

#: The TAO 5 TF1 image that runs `detectnet_v2` (NGC).
DEFAULT_IMAGE = "nvcr.io/nvidia/tao/tao-toolkit:5.0.0-tf1.15.5"
#: GPUs a job books and gets: its num_gpus (auto), every GPU the host lends (all), none (CPU smoke
#: runs), or a count.
GpuSetting = Literal["auto", "all", "none"] | int

RUN_LABEL = "org.taoflow.run-id"
JOB_LABEL = "org.taoflow.job"
#: On a container that holds booked GPUs: the host's slot name and the GPU ids.
GPU_HOST_LABEL = "org.taoflow.gpu-host"
GPUS_LABEL = "org.taoflow.gpus"
DEFAULT_SHM_SIZE = "16G"
_SECRET_NAME = re.compile(r"(?i)key|secret|token|password|passwd|connection_string|sas|credential")
#: NVIDIA's recommendation for TAO containers (the NGC entrypoint warns without them).
DEFAULT_ULIMITS: tuple[tuple[str, int], ...] = (("memlock", -1), ("stack", 67108864))


def invoking_user() -> str:
    """uid:gid of whoever runs taoflow, so results are theirs and not root's.

    >>> import os
    >>> invoking_user() == f"{os.getuid()}:{os.getgid()}"
    True
    """
    return f"{os.getuid()}:{os.getgid()}"


def gpu_demand(docker_gpus: GpuSetting, gpu_index: tuple[int, ...] | list[int], count: int) -> GpuDemand | None:
    """What a job with `count` GPUs (its command's) books under the request's GPU setting.

    >>> gpu_demand("auto", [], 1), gpu_demand("none", [], 1), gpu_demand("auto", [2, 3], 2).pinned
    (GpuDemand(count=1, pinned=(), every=False), None, (2, 3))
    """
    if docker_gpus == "none" or count < 1:
        return None
    if gpu_index:
        return GpuDemand(len(gpu_index), tuple(gpu_index))
    if docker_gpus == "all":
        return GpuDemand(count, every=True)
    if docker_gpus == "auto":
        return GpuDemand(count)
    if isinstance(docker_gpus, int) and docker_gpus >= 1:
        return GpuDemand(docker_gpus)
    raise ConfigError(f"docker_gpus must be 'auto', 'all', 'none' or a count >= 1, got {docker_gpus!r}")


def device_requests(demand: GpuDemand | None, ids: tuple[int, ...] | None = None) -> tuple[dict, ...]:
    """docker `device_requests`: exactly the booked GPUs `ids`; without a booking, the pinned ones,
    all of them, or a count.

    >>> device_requests(GpuDemand(1), (3,)), device_requests(None), device_requests(GpuDemand(2))
    (({'device_ids': ['3'], 'capabilities': [['gpu']]},), (), ({'count': 2, 'capabilities': [['gpu']]},))
    """
    if demand is None:
        return ()
    chosen = ids if ids is not None else demand.pinned
    if chosen:
        return ({"device_ids": [str(i) for i in chosen], "capabilities": [["gpu"]]},)
    return ({"count": -1 if demand.every else demand.count, "capabilities": [["gpu"]]},)


@dataclass(frozen=True)
class LaunchPlan:
    """One `detectnet_v2` job: image, argv, mounts, environment, GPUs, user, labels."""

    command: Command
    mounts: MountPlan
    run_id: str
    image: str = DEFAULT_IMAGE
    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    device_requests: tuple[dict, ...] = ()
    user: str | None = None
    shm_size: str | None = DEFAULT_SHM_SIZE
    ulimits: tuple[tuple[str, int], ...] = DEFAULT_ULIMITS
    network_mode: str | None = None
    #: Extra docker create options (from ~/.tao_mounts.json DockerOptions: privileged, ports, tty).
    docker_options: Mapping[str, Any] = field(default_factory=dict)
    #: Allow continuing from checkpoints that another run left in the results folder.
    resume: bool = False
    #: The GPUs the job books before it starts (None: no GPUs); `device_requests` or the environment
    #: name them once they are booked (`Launcher.assign_gpus`).
    gpus: GpuDemand | None = None
    #: True once `Launcher.assign_gpus` named the GPUs (booked, or as the request says without a booking).
    gpus_assigned: bool = False
    #: Labels beside the run id and the sub-task (the GPUs a job holds).
    labels_extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def results_host_dir(self) -> Path | None:
        if self.command.results_dir is None:
            return None
        return self.mounts.host_path(self.command.results_dir)

    @property
    def attempts_file(self) -> Path:
        """taoflow's journal of this job's attempts: beside the results folder, not in it (the
        container writes there)."""
        results = self.results_host_dir or self.mounts.host_path(self.command.output_prefix or "/") or Path(".")
        return results.parent / f".{results.name}.taoflow-{self.command.subtask}-attempts.jsonl"

    @property
    def labels(self) -> dict[str, str]:
        return {RUN_LABEL: self.run_id, JOB_LABEL: self.command.subtask, **self.labels_extra}

    @property
    def secrets(self) -> tuple[str, ...]:
        """The key, plus the values of environment variables named like credentials."""
        from_env = tuple(v for k, v in self.env.items() if v and _SECRET_NAME.search(k))
        return self.command.secrets + from_env

    def with_options(self, **changes: Any) -> "LaunchPlan":
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The display form: JSON-ready, secrets masked, env values left out."""
        return {
            "image": self.image,
            "argv": self.command.display_argv(),
            "mounts": self.mounts.render(),
            "env": sorted(self.env),
            "device_requests": list(self.device_requests),
            "gpus": self.gpus.describe() if self.gpus else None,
            "user": self.user,
            "shm_size": self.shm_size,
            "ulimits": {name: value for name, value in self.ulimits},
            "network_mode": self.network_mode,
            "labels": self.labels,
            "results": str(self.results_host_dir) if self.results_host_dir else None,
            "log_file": self.command.log_file,
            "resume": self.resume,
        }

    def render(self) -> str:
        d = self.to_dict()
        gpus = ", ".join(_render_request(r) for r in self.device_requests) or (
            f"{self.gpus.describe()}, booked from this host's GPU slots when the job starts" if self.gpus
            else "none (CPU only)")
        lines = [
            f"image:    {d['image']}",
            f"command:  {' '.join(d['argv'])}",
            f"user:     {d['user'] or 'image default (root)'}",
            f"gpus:     {gpus}",
            f"shm/ulimits: {d['shm_size']} / " + ", ".join(f"{k}={v}" for k, v in d["ulimits"].items()),
            f"network:  {d['network_mode'] or 'engine default'}",
            f"env:      {', '.join(d['env']) or '-'}",
            f"labels:   {', '.join(f'{k}={v}' for k, v in d['labels'].items())}",
            "mounts:",
            *(f"  {m}" for m in d["mounts"]),
        ]
        if d["log_file"]:
            lines.append(f"log file: {d['log_file']} (written by taoflow from the streamed log)")
        if self.command.subtask in ("train", "evaluate"):
            reason = self.command.key_reason
            lines.append(f"key:      {'passed as -k: ' + reason if reason else 'not passed (TAO 5 needs it only for a .tlt model or a pre-5.0 checkpoint)'}")
        return "\n".join(lines)


def _render_request(request: dict) -> str:
    if request.get("device_ids"):
        return "GPUs " + ",".join(request["device_ids"])
    return "all GPUs" if request.get("count") == -1 else f"{request.get('count')} GPU(s)"


def build_plan(
    command: Command,
    *,
    slots: Mapping[Slot | str, str | os.PathLike],
    run_id: str,
    image: str = DEFAULT_IMAGE,
    docker_gpus: GpuSetting = "auto",
    gpu_index: tuple[int, ...] | list[int] = (),
    user: str | None = None,
    env: Mapping[str, str] | None = None,
    network_mode: str | None = None,
    tao_mounts: TaoMounts | None = None,
    resume: bool = False,
) -> LaunchPlan:
    """Assemble a plan; `user` defaults to the invoking uid:gid (DockerOptions.user if imported).

    >>> from tasks.launch.command import train_command
    >>> plan = build_plan(train_command(num_epochs=3), slots={"results": "/tmp/run/results"}, run_id="r1",
    ...                   docker_gpus="none", tao_mounts=TaoMounts())
    >>> plan.labels["org.taoflow.run-id"], plan.mounts.render()
    ('r1', ['/tmp/run/results -> /workspace/taoflow/results (rw)'])
    """
    if not run_id or not run_id.strip():
        raise ConfigError("a launch needs a run id (it labels the container and marks the results)")
    imported = tao_mounts or TaoMounts()
    options = dict(imported.docker_options)
    chosen_user = user or options.pop("user", None) or invoking_user()
    options.pop("user", None)
    shm = options.pop("shm_size", DEFAULT_SHM_SIZE)
    ulimits = dict(DEFAULT_ULIMITS) | {k: int(v) for k, v in (options.pop("ulimits", None) or {}).items()}
    network = network_mode or options.pop("network", None)
    options.pop("network", None)
    environment = {"TELEMETRY_OPT_OUT": "1"} | imported.envs | dict(env or {})
    return LaunchPlan(
        command=command,
        mounts=MountPlan.from_slots(slots, extra=imported.mounts),
        run_id=run_id,
        image=image,
        env=environment,
        gpus=gpu_demand(docker_gpus, gpu_index, command.num_gpus),
        user=chosen_user,
        shm_size=shm,
        ulimits=tuple(ulimits.items()),
        network_mode=network,
        docker_options=options,
        resume=resume,
    )
