"""The work pools `prefect.yaml` deploys to, and the commands that create them.

`python -m deployments.pools` prints the `prefect work-pool` commands; with `--create` it does what
they do through Prefect's client, in one process (idempotent: a pool is created, or updated with its
template and its concurrency limit set or cleared). An operator
overrides a pool's limit with `--concurrency NAME=N` (or `NAME=none`), e.g.

    python -m deployments.pools --create --concurrency gpu-docker=4 --concurrency aks-gpu=16

The templates in `deployments/work-pools/` started as each worker's
`get_default_base_job_template()` with taoflow's defaults filled in (image, GPUs, shared memory,
node pool); `tests/deployments/test_work_pools.py` renders them through the installed workers so
a template a worker cannot load never ships.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, replace
from pathlib import Path

TEMPLATES = Path(__file__).resolve().parent / "work-pools"


@dataclass(frozen=True)
class WorkPool:
    """A work pool: its name in prefect.yaml, its worker type, its base job template and how many
    of its runs may run at once (Prefect holds the others Scheduled until a slot frees)."""

    name: str
    type: str
    description: str
    template: str | None = None  # file name in work-pools/; None: the worker's default
    concurrency: int | None = None  # pool-wide limit; None: none

    @property
    def template_path(self) -> Path | None:
        return TEMPLATES / self.template if self.template else None

    def base_job_template(self) -> dict | None:
        path = self.template_path
        return json.loads(path.read_text()) if path else None

    def create_command(self, prefect: str = "prefect") -> list[str]:
        command = [prefect, "work-pool", "create", self.name, "--type", self.type, "--overwrite"]
        if self.template_path:
            command += ["--base-job-template", str(self.template_path)]
        return command

    def concurrency_command(self, prefect: str = "prefect") -> list[str]:
        if self.concurrency is None:
            return [prefect, "work-pool", "clear-concurrency-limit", self.name]
        return [prefect, "work-pool", "set-concurrency-limit", self.name, str(self.concurrency)]

    def commands(self, prefect: str = "prefect") -> list[list[str]]:
        return [self.create_command(prefect), self.concurrency_command(prefect)]


POOLS: tuple[WorkPool, ...] = (
    # No pool-wide limit: before a training starts, taoflow books GPU slots on the host that runs it
    # (TAOFLOW_GPUS), so a host never runs more trainings than it has GPUs for, and a number for
    # the whole pool would have to follow every host's GPUs. The pool also runs the watch and the
    # sweep flows, which take no GPU. `prefect worker start --limit N` bounds one host's processes.
    WorkPool("gpu-process", "process", "A GPU host: the flow runs as a process and starts TAO with Docker."),
    # One run at a time: every run gets the host GPUs its job variables name (GPU 0 by default), so
    # two runs on one host would share them. One docker worker per GPU host, started with
    # `--limit 1`; with N such hosts, raise the limit to N.
    WorkPool("gpu-docker", "docker", "A Docker GPU host: the job container is the TAO job image.", "gpu-docker.json",
             concurrency=1),
    # Kubernetes hands out nvidia.com/gpu itself (a pod waits Pending until a GPU is free), so the
    # limit is not about sharing: it caps the Jobs, and so the GPU nodes the autoscaler adds, a
    # sweep of 64 variants would start at once. Set it to the GPU node pool's nodes x GPUs per node.
    WorkPool("aks-gpu", "kubernetes", "AKS: a Job on the GPU node pool, nvidia.com/gpu requested.", "aks-gpu.json",
             concurrency=4),
    # A container group beyond the subscription's regional ACI GPU quota (small, often a request
    # away from zero) fails its run instead of waiting: raise the limit to the quota's GPUs.
    WorkPool("aci-gpu", "azure-container-instance", "Azure Container Instances with a GPU SKU.", "aci-gpu.json",
             concurrency=1),
)


def pool(name: str) -> WorkPool:
    return next(p for p in POOLS if p.name == name)


def with_overrides(pools: tuple[WorkPool, ...], overrides: list[str]) -> tuple[WorkPool, ...]:
    """The pools with the operator's `NAME=N` / `NAME=none` concurrency limits.

    >>> [p.concurrency for p in with_overrides(POOLS, ["gpu-docker=4", "aks-gpu=none"])]
    [None, 4, None, 1]
    """
    limits: dict[str, int | None] = {}
    names = [p.name for p in pools]
    for item in overrides:
        name, _, value = item.partition("=")
        if name not in names:
            raise SystemExit(f"--concurrency {item}: no work pool {name!r}; the pools are {', '.join(names)}")
        if value != "none" and not (value.isdigit() and int(value) > 0):
            raise SystemExit(f"--concurrency {item}: the limit is a whole number >= 1, or 'none' for no limit")
        limits[name] = None if value == "none" else int(value)
    return tuple(replace(p, concurrency=limits[p.name]) if p.name in limits else p for p in pools)


def apply(pools: tuple[WorkPool, ...]) -> None:
    """Create or update the pools on the server of PREFECT_API_URL, as their commands would, in one
    process (each `prefect work-pool` command is an interpreter of its own: eight of them took ~25 s
    on a 2-core machine)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate, WorkPoolUpdate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
    from prefect.utilities.asyncutils import run_coro_as_sync
    from prefect.workers.utilities import get_default_base_job_template_for_infrastructure_type

    with get_client(sync_client=True) as client:
        for item in pools:
            template = item.base_job_template() or run_coro_as_sync(
                get_default_base_job_template_for_infrastructure_type(item.type))
            try:
                client.read_work_pool(item.name)
            except ObjectNotFound:
                try:
                    client.create_work_pool(WorkPoolCreate(name=item.name, type=item.type, description=item.description,
                                                           base_job_template=template,
                                                           concurrency_limit=item.concurrency))
                    continue
                except ObjectAlreadyExists:
                    pass  # created in the meantime: update it like any existing one
            client.update_work_pool(item.name, WorkPoolUpdate(description=item.description, base_job_template=template,
                                                              concurrency_limit=item.concurrency))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m deployments.pools", description=__doc__.splitlines()[0])
    parser.add_argument("--create", action="store_true", help="create or update them (default: print the commands)")
    parser.add_argument("--concurrency", action="append", default=[], metavar="NAME=N",
                        help="a pool's concurrency limit instead of taoflow's (N >= 1, or none)")
    args = parser.parse_args(argv)
    pools = with_overrides(POOLS, args.concurrency)
    for item in pools:
        for command in item.commands():
            print(" ".join(command))
    if args.create:
        apply(pools)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
