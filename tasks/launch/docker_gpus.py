"""GPUs and Docker containers: naming the booked GPUs to the engine, removing ghosts, finding neighbours.

A container is told its GPUs in one of two ways (`TAOFLOW_GPU_HANDOVER`): a device request for
exactly those ids (`--gpus device=2,3`, the NVIDIA Container Toolkit), or `NVIDIA_VISIBLE_DEVICES`
for engines whose default runtime is `nvidia`. Either way the container sees them as 0..N-1, which
is how the command numbers them (`tasks.launch.command.container_gpu_index`). Every container that
holds GPUs is labelled with the host and the ids, so the next holder of a GPU can find a container
that outlived its lease.
"""

from __future__ import annotations

from tasks.launch.gpus import Handover
from tasks.launch.plan import GPU_HOST_LABEL, GPUS_LABEL, RUN_LABEL, LaunchPlan, device_requests

VISIBLE_ENV = "NVIDIA_VISIBLE_DEVICES"


def assign_container_gpus(plan: LaunchPlan, ids: tuple[int, ...] | None, handover: Handover) -> LaunchPlan:
    """`plan` with its GPUs named to the engine: exactly `ids` when booked.

    >>> from tasks.launch.command import train_command
    >>> from tasks.launch.plan import build_plan
    >>> plan = build_plan(train_command(), slots={"results": "/tmp/r"}, run_id="r1")
    >>> assign_container_gpus(plan, (1,), "device-requests").device_requests
    ({'device_ids': ['1'], 'capabilities': [['gpu']]},)
    >>> assign_container_gpus(plan, (1,), "env").env["NVIDIA_VISIBLE_DEVICES"]
    '1'
    """
    if plan.gpus is None:
        return plan.with_options(gpus_assigned=True)
    if ids is not None and handover == "env":
        return plan.with_options(device_requests=(), env={**plan.env, VISIBLE_ENV: ",".join(map(str, ids))},
                                 gpus_assigned=True)
    return plan.with_options(device_requests=device_requests(plan.gpus, ids), gpus_assigned=True)


def _gpus_of(attrs: dict) -> set[int] | None:
    """The GPUs a container was given (None: all of them), or an empty set for none."""
    host = attrs.get("HostConfig") or {}
    found: set[int] = set()
    for request in host.get("DeviceRequests") or []:
        if request.get("DeviceIDs"):
            found |= {int(i) for i in request["DeviceIDs"] if str(i).isdigit()}
        elif request.get("Count"):
            return None
    for entry in (attrs.get("Config") or {}).get("Env") or []:
        name, _, value = entry.partition("=")
        if name == VISIBLE_ENV and value not in ("", "void", "none"):
            if value == "all":
                return None
            found |= {int(i) for i in value.split(",") if i.strip().isdigit()}
    return found


def _plan_gpus(plan: LaunchPlan) -> set[int] | None:
    return _gpus_of({"HostConfig": {"DeviceRequests": [
        {"DeviceIDs": r.get("device_ids"), "Count": r.get("count")} for r in plan.device_requests]},
        "Config": {"Env": [f"{k}={v}" for k, v in plan.env.items()]}})


def _overlap(mine: set[int] | None, theirs: set[int] | None) -> bool:
    if mine is not None and not mine or theirs is not None and not theirs:
        return False
    return mine is None or theirs is None or bool(mine & theirs)


def _describe(container) -> str:
    run = (container.labels or {}).get(RUN_LABEL)
    return f"container {container.name}" + (f" of run {run}" if run else "")


def gpu_neighbours(client, plan: LaunchPlan) -> list[str]:
    """Running containers, not the plan's run's, that use a GPU the plan's job uses."""
    mine = _plan_gpus(plan)
    if plan.gpus is None or mine is not None and not mine:
        return []
    try:
        running = client.containers.list()
    except Exception:  # noqa: BLE001 - a diagnosis, never a reason to fail the job
        return []
    return [_describe(c) for c in running
            if (c.labels or {}).get(RUN_LABEL) != plan.run_id and _overlap(mine, _gpus_of(c.attrs))]


def evict_containers(client, host: str, ids: tuple[int, ...]) -> list[str]:
    """Remove every container labelled as holding one of `ids` on `host`: whoever books a GPU holds
    its lease, so a container still labelled with it outlived the run that booked it."""
    removed = []
    for container in client.containers.list(all=True, filters={"label": f"{GPU_HOST_LABEL}={host}"}):
        held = {int(i) for i in (container.labels or {}).get(GPUS_LABEL, "").split(",") if i.isdigit()}
        if held & set(ids):
            container.remove(force=True)
            removed.append(_describe(container))
    return removed
