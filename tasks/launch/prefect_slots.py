"""GPU slots on the Prefect server: global concurrency limits of 1, taken with leases.

The `SlotLedger` of `tasks.launch.gpu_booking`, on Prefect's own primitives: the limits are
`/v2/concurrency_limits` (one per GPU, created on first use), a job takes its GPUs with one
`increment-with-lease` (all or none, 423 when one is taken) and renews the lease while it runs;
the server's repossessor frees the slots of a lease that was not renewed. Who holds a GPU is kept
in a Prefect variable beside its limit (`<limit>-holder`), for the runs that wait: the server
keeps a lease's holder but has no API to read it back.

Every call answers `SlotServerUnavailable` when the server does not (a 408, 429 or 5xx left after the
Prefect client's own retries, or no connection): a busy server is one more reason to wait for a
GPU, not the end of a run (`GpuBroker.book`).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Sequence
from uuid import UUID

import httpx
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, VariableCreate, VariableUpdate
from prefect.client.schemas.objects import ConcurrencyLeaseHolder
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
from prefect.settings import PREFECT_API_URL

from tasks.errors import SlotServerUnavailable, busy_answer

#: The holder record beside each limit.
HOLDER_SUFFIX = "-holder"


def server_configured() -> bool:
    """True when flows talk to a Prefect server: an ephemeral API lives and dies with one process,
    so its slots could not be shared with any other run (and would outlive a killed one)."""
    return bool(PREFECT_API_URL.value())


class PrefectSlotLedger:
    """GPU slots as Prefect global concurrency limits (see the module doc)."""

    def __init__(self, flow_run_id: str | None = None) -> None:
        self.holder = ConcurrencyLeaseHolder(type="flow_run", id=UUID(flow_run_id)) if flow_run_id else None

    def ensure(self, names: Sequence[str]) -> None:
        with _server() as client:
            for name in names:
                if _limit(client, name) is not None:
                    continue
                try:
                    client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))
                except (ObjectAlreadyExists, httpx.HTTPStatusError):
                    # Another run created it in the same second: SQLite answers that with a 500
                    # (a unique constraint), Postgres with a 409. Either way it must exist now.
                    if _limit(client, name) is None:
                        raise

    def busy(self, names: Sequence[str]) -> set[str]:
        with _server() as client:
            limits = {name: _limit(client, name) for name in names}
        return {n for n, limit in limits.items() if limit is not None and limit.active_slots >= limit.limit}

    def take(self, names: Sequence[str], lease_seconds: float) -> str | None:
        with _server() as client:
            try:
                answer = client.increment_concurrency_slots_with_lease(
                    names=list(names), slots=1, mode="concurrency", lease_duration=lease_seconds, holder=self.holder)
            except httpx.HTTPStatusError as exc:
                if exc.response.status_code == 423:  # taken, or taken in the same second by another run
                    return None
                raise
        return str(answer.json()["lease_id"])

    def renew(self, lease: str, lease_seconds: float) -> bool:
        with _server() as client:
            try:
                client.renew_concurrency_lease(UUID(lease), lease_duration=lease_seconds)
            except httpx.HTTPStatusError as exc:
                if exc.response.status_code in (404, 410):
                    return False
                raise
        return True

    def release(self, lease: str) -> None:
        with _server() as client:
            client.release_concurrency_slots_with_lease(UUID(lease))

    def note_holder(self, names: Sequence[str], holder: str) -> None:
        with _server() as client:
            for name in names:
                variable = name + HOLDER_SUFFIX
                try:
                    client.create_variable(VariableCreate(name=variable, value=holder))
                except ObjectAlreadyExists:
                    client.update_variable(VariableUpdate(name=variable, value=holder))

    def holders(self, names: Sequence[str]) -> dict[str, str]:
        found = {}
        with _server() as client:
            for name in names:
                variable = client.read_variable_by_name(name + HOLDER_SUFFIX)
                if variable is not None:
                    found[name] = str(variable.value)
        return found


@contextmanager
def _server() -> Iterator:
    """A client of the server; its busy or missing answers as `SlotServerUnavailable`."""
    try:
        with get_client(sync_client=True) as client:
            yield client
    except httpx.HTTPStatusError as exc:
        code = exc.response.status_code
        if not busy_answer(code):
            raise
        raise SlotServerUnavailable(f"the Prefect server answered {code} to a GPU booking",
                                    fix="the run waits for it; check the server's load and its database") from None
    except httpx.TransportError as exc:
        raise SlotServerUnavailable(f"the Prefect server did not answer a GPU booking: {type(exc).__name__}",
                                    fix="check that the server runs and PREFECT_API_URL reaches it") from None


def _limit(client, name: str):
    try:
        return client.read_global_concurrency_limit_by_name(name)
    except ObjectNotFound:
        return None
