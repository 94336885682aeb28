"""GPU slots: every container that uses GPUs books them first, and holds them only while it runs.

A host's GPUs (`tasks.launch.gpus.GpuHost`) are global concurrency limits of 1 on the Prefect
server, one per GPU (`slot_name`), so every worker and host that talks to the server shares one
view. A job takes its GPUs as one lease (all or none), names them to the engine exactly (Docker
`device_ids`, `NVIDIA_VISIBLE_DEVICES`, or `CUDA_VISIBLE_DEVICES` for a process) and releases the
lease at every ending. The lease is renewed every third of its length; a flow process killed with
`kill -9` stops renewing, and the server frees the GPU when the lease runs out. Its container does
not outlive it (`tasks.launch.watchdog`), and a job that takes GPUs first removes any container
still labelled with them (`Launcher.evict`): a GPU is never handed on while a container runs on it.

While it waits, a job says which runs hold the GPUs it wants. The ledger itself is a protocol
(`SlotLedger`); `tasks.launch.prefect_slots` is the Prefect implementation.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol, Sequence

from tasks.errors import GpuLeaseLost, SlotServerUnavailable, TrainingCancelled
from tasks.launch.base import CancelToken, JobObserver, JobOutcome, Launcher
from tasks.launch.gpus import GpuDemand, GpuHost, slot_name
from tasks.launch.plan import GPU_HOST_LABEL, GPUS_LABEL, LaunchPlan

#: The Prefect server refuses leases shorter than 60 s; a killed holder's GPU is free after this.
LEASE_SECONDS = 60.0


class SlotLedger(Protocol):
    """Where slots are booked: global concurrency limits of 1, taken as one lease."""

    def ensure(self, names: Sequence[str]) -> None:
        """Create the limits (limit 1) that do not exist yet."""

    def busy(self, names: Sequence[str]) -> set[str]:
        """The names whose slot is taken now."""

    def take(self, names: Sequence[str], lease_seconds: float) -> str | None:
        """A lease on one slot of every name (all or none); None when one is taken."""

    def renew(self, lease: str, lease_seconds: float) -> bool:
        """False when the lease is gone (it expired, or the server forgot it)."""

    def release(self, lease: str) -> None: ...

    def note_holder(self, names: Sequence[str], holder: str) -> None:
        """Record who holds `names` now, for the runs that wait for them."""

    def holders(self, names: Sequence[str]) -> dict[str, str]:
        """Who holds each of `names`, as recorded."""


@dataclass
class Booking:
    """GPUs held under one lease, renewed in the background until released."""

    ids: tuple[int, ...]
    lease: str
    ledger: SlotLedger
    lease_seconds: float = LEASE_SECONDS
    #: How often the lease is renewed (a third of it: two renewals may fail before it runs out).
    renew_seconds: float = LEASE_SECONDS / 3
    #: Called once, from the renewal thread, when the lease is lost while held.
    on_lost: Callable[[], None] | None = None
    lost: bool = False
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> "Booking":
        threading.Thread(target=self._renew, name="taoflow-gpu-lease", daemon=True).start()
        return self

    def _renew(self) -> None:
        renewed = time.monotonic()
        while not self._stop.wait(self.renew_seconds):
            try:
                if self.ledger.renew(self.lease, self.lease_seconds):
                    renewed = time.monotonic()
                    continue
            except Exception:  # noqa: BLE001 - the server may be away for a moment: try again
                # Give up one renewal before the lease can run out: the job must be stopped before
                # the server may hand its GPUs to another run.
                if time.monotonic() - renewed < self.lease_seconds - self.renew_seconds:
                    continue
            self.lost = True
            if self.on_lost is not None:
                self.on_lost()
            return

    def release(self) -> None:
        self._stop.set()
        try:
            self.ledger.release(self.lease)
        except Exception:  # noqa: BLE001 - an unreleased lease expires by itself
            pass


@dataclass
class GpuBroker:
    """Books a job's GPUs on this host, waiting (and saying for whom) while they are taken."""

    host: GpuHost
    #: None: no Prefect server to book on (an ephemeral API): nothing is booked.
    ledger: SlotLedger | None
    #: Who books, as the waiting runs read it: "flow run 'name' (id)".
    holder: str
    notice: Callable[[str], None] = print
    lease_seconds: float = LEASE_SECONDS
    renew_seconds: float = LEASE_SECONDS / 3
    poll_seconds: float = 2.0
    #: How long a job waits for a server that does not answer its booking before it gives up.
    patience_seconds: float = 600.0

    @property
    def books(self) -> bool:
        return self.ledger is not None and self.host.mode == "slots"

    def unbooked(self, demand: GpuDemand) -> str | None:
        """Why a job's GPUs are not booked here, for the log (None: the platform hands them out)."""
        if self.host.mode == "scheduler":
            return None
        why = ("this host lends no GPUs to book (TAOFLOW_GPUS unset and no nvidia-smi, or none)"
               if self.host.mode == "none" else "there is no Prefect server to book them on (an ephemeral API)")
        return (f"{demand.describe()} not booked: {why}; the engine is asked for them directly, and other runs "
                "on this host may use the same GPUs (docs/deploy.md, \"Many runs at once\")")

    def book(self, demand: GpuDemand, cancel: CancelToken | None = None) -> Booking:
        """Take the GPUs `demand` asks for; wait while they are taken (cancel stops the wait)."""
        assert self.ledger is not None, "book() needs a ledger (see `books`)"
        self.host.check(demand)
        wanted = self.host.wanted(demand)
        names = {i: slot_name(self.host.name, i) for i in self.host.ids}
        said, silent_since, ensured = None, None, False
        while True:
            try:
                if not ensured:
                    self.ledger.ensure(list(names.values()))
                    ensured = True
                booking, message = self._try(wanted, names, said)
                silent_since = None
            except SlotServerUnavailable as exc:
                # A server busy for a moment (SQLite under load answers 503) is one more reason to wait.
                silent_since = silent_since or time.monotonic()
                if time.monotonic() - silent_since > self.patience_seconds:
                    raise
                booking, message = None, f"waiting for the GPU booking: {exc.what}; trying again"
            if booking is not None:
                return booking
            if message != said:
                self.notice(message)
                said = message
            if cancel is not None and cancel.cancelled:
                raise TrainingCancelled(f"stopped while waiting for GPUs ({cancel.reason})",
                                        fix="run again; nothing was started")
            time.sleep(self.poll_seconds * random.uniform(0.75, 1.25))

    def _try(self, wanted: GpuDemand, names: dict[int, str], said: str | None) -> tuple["Booking | None", str]:
        """One round: the booking when the GPUs were free, else why it waits."""
        busy = self.ledger.busy(list(names.values()))
        for ids in _candidates(wanted, [i for i in self.host.ids if names[i] not in busy]):
            lease = self.ledger.take([names[i] for i in ids], self.lease_seconds)
            if lease is not None:
                booking = Booking(ids, lease, self.ledger, self.lease_seconds, self.renew_seconds).start()
                try:
                    self.ledger.note_holder([names[i] for i in ids], self.holder)
                except SlotServerUnavailable:
                    pass  # the note only tells waiting runs who holds the GPU; the lease is what counts
                if said is not None:
                    self.notice(f"took {_gpus(ids)} of host {self.host.name}")
                return booking, ""
        blocking = sorted(busy & {names[i] for i in (wanted.pinned or self.host.ids)})
        holders = self.ledger.holders(blocking)
        return None, (f"waiting for {wanted.describe()} of host {self.host.name}: "
                      + "; ".join(f"{_gpus([_index(n)])} held by {holders.get(n, 'a run that left no record')}"
                                  for n in blocking))


def _candidates(demand: GpuDemand, free: list[int]) -> list[tuple[int, ...]]:
    if demand.pinned:
        return [demand.pinned] if set(demand.pinned) <= set(free) else []
    return list(itertools.combinations(free, demand.count))


def _index(name: str) -> int:
    return int(name.rsplit("-", 1)[1])


def _gpus(ids: Sequence[int]) -> str:
    return ("GPU " if len(ids) == 1 else "GPUs ") + ",".join(map(str, ids))


@dataclass
class BookingLauncher:
    """A launcher whose GPU jobs run only on GPUs booked for them (see the module doc)."""

    inner: Launcher
    broker: GpuBroker

    @property
    def policy(self):
        return self.inner.policy

    def image_digest(self, image: str) -> str | None:
        return self.inner.image_digest(image)

    def assign_gpus(self, plan: LaunchPlan, ids: tuple[int, ...] | None) -> LaunchPlan:
        return self.inner.assign_gpus(plan, ids)

    def evict(self, host: str, ids: tuple[int, ...]) -> list[str]:
        return self.inner.evict(host, ids)

    def with_policy(self, policy) -> "BookingLauncher":
        return BookingLauncher(self.inner.with_policy(policy), self.broker)

    def run(self, plan: LaunchPlan, observer: JobObserver | None = None, cancel: CancelToken | None = None) -> JobOutcome:
        if plan.gpus is None or not self.broker.books:
            why = self.broker.unbooked(plan.gpus) if plan.gpus is not None else None
            if why is not None:
                self.broker.notice(why)
            return self.inner.run(self.inner.assign_gpus(plan, None), observer, cancel)
        token = cancel or CancelToken()
        booking = self.broker.book(plan.gpus, token)
        booking.on_lost = lambda: token.cancel("this run lost its GPU lease")
        try:
            for ghost in self.inner.evict(self.broker.host.name, booking.ids):
                self.broker.notice(f"removed {ghost}: it still ran on {_gpus(booking.ids)} without a lease")
            booked = self.inner.assign_gpus(plan, booking.ids).with_options(
                labels_extra={GPU_HOST_LABEL: self.broker.host.name, GPUS_LABEL: ",".join(map(str, booking.ids))})
            return self.inner.run(booked, observer, token)
        except TrainingCancelled:
            if booking.lost:
                raise _lease_lost(booking) from None
            raise
        finally:
            booking.release()


def _lease_lost(booking: Booking) -> GpuLeaseLost:
    return GpuLeaseLost(
        f"the lease on {_gpus(booking.ids)} ran out while the job held them (the Prefect server was unreachable "
        f"for over {booking.lease_seconds:.0f} s, or it restarted): the job was stopped so no other run shares them",
        fix="nothing to do: the retry books GPUs again and resumes from the last checkpoint",
    )
