"""GPU slots on a real Prefect API (tasks/launch/gpu_booking.py, prefect_slots.py), with the stand-in
trainer run for real: jobs book their GPUs as global concurrency limits of 1 per host and GPU, wait
(saying for whom) while they are taken, run on exactly what they booked, and give them back at every
ending; a job whose lease is lost is stopped, so no GPU is ever shared."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field

import pytest

from tasks.errors import ConfigError, GpuLeaseLost
from tasks.launch import (
    BookingLauncher,
    GpuBroker,
    GpuDemand,
    GpuHost,
    ProcessLauncher,
    build_plan,
    run_training,
    train_command,
)
from tasks.launch.gpu_booking import Booking
from tasks.launch.gpus import slot_name
from tasks.launch.prefect_slots import PrefectSlotLedger
from tasks.launch.slots import SPEC_FILE_NAME, Slot
from tests.launch.harness import FAST_STOP, spec_text
from tests.standin.image import standin_executable

pytestmark = pytest.mark.services


def host(*ids: int) -> GpuHost:
    return GpuHost(f"test-{uuid.uuid4().hex[:8]}", ids, "slots")


def broker(gpu_host: GpuHost, name: str, said: list[str], **kw) -> GpuBroker:
    return GpuBroker(gpu_host, PrefectSlotLedger(str(uuid.uuid4())), f"flow run {name!r}", notice=said.append,
                     poll_seconds=0.2, **kw)


def test_jobs_take_free_gpus_wait_for_taken_ones_and_say_who_holds_them(prefect_api):
    gpus = host(0, 1)
    said: list[str] = []
    first = broker(gpus, "a", said).book(GpuDemand(1))
    second = broker(gpus, "b", said).book(GpuDemand(1))
    assert {first.ids, second.ids} == {(0,), (1,)}
    got: list[Booking] = []
    waiting = threading.Thread(target=lambda: got.append(broker(gpus, "c", said).book(GpuDemand(1, pinned=(1,)))))
    waiting.start()
    deadline = time.monotonic() + 60
    while not any(line.startswith("waiting for GPU 1") for line in said) and time.monotonic() < deadline:
        time.sleep(0.1)
    holder = "a" if first.ids == (1,) else "b"
    assert any(f"GPU 1 held by flow run {holder!r}" in line for line in said), said
    # GPU 0 frees first: the pinned job keeps waiting for exactly GPU 1.
    (first if first.ids == (0,) else second).release()
    time.sleep(1.0)
    assert got == [] and waiting.is_alive()
    (second if second.ids == (1,) else first).release()
    waiting.join(60)
    assert got and got[0].ids == (1,)
    got[0].release()
    assert PrefectSlotLedger().busy([slot_name(gpus.name, 0), slot_name(gpus.name, 1)]) == set()


def test_a_job_takes_all_its_gpus_at_once_or_none(prefect_api):
    gpus = host(0, 1, 2)
    said: list[str] = []
    one = broker(gpus, "one", said).book(GpuDemand(1, pinned=(1,)))
    two = broker(gpus, "two", said).book(GpuDemand(2))
    assert two.ids == (0, 2)  # GPU 1 is taken: the two free ones, in one lease
    with pytest.raises(ConfigError, match="needs 4 GPUs but host"):
        broker(gpus, "big", said).book(GpuDemand(4))
    with pytest.raises(ConfigError, match="needs GPU 7"):
        broker(gpus, "pinned", said).book(GpuDemand(1, pinned=(7,)))
    one.release()
    two.release()


@dataclass
class Seen:
    """Every job the inner launcher ran: its GPUs as the trainer got them, and when."""

    jobs: list[tuple[str, float, float]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class RecordingLauncher(ProcessLauncher):
    """The real process launcher, noting the CUDA_VISIBLE_DEVICES each job was started with."""

    seen: Seen

    def run(self, plan, observer=None, cancel=None):
        started = time.monotonic()
        try:
            return super().run(plan, observer, cancel)
        finally:
            with self.seen.lock:
                self.seen.jobs.append((plan.env.get("CUDA_VISIBLE_DEVICES", ""), started, time.monotonic()))


def plan_in(root, epochs: int = 3, seconds: float = 0.4):
    for name in ("specs", "data"):
        (root / name).mkdir(parents=True, exist_ok=True)
    (root / "specs" / SPEC_FILE_NAME).write_text(spec_text(epochs))
    plan = build_plan(train_command(num_epochs=epochs, num_gpus=1),
                      slots={Slot.SPEC: root / "specs", Slot.TRAINING_DATA: root / "data", Slot.RESULTS: root / "results"},
                      run_id=uuid.uuid4().hex, docker_gpus="auto", env={"TAO_STANDIN_EPOCH_SECONDS": str(seconds),
                                                                         "TAO_STANDIN_VISIBLE_GPUS": "2"})
    return plan


def test_three_trainers_on_two_gpus_never_share_one(prefect_api, tmp_path):
    gpus = host(0, 1)
    seen = Seen()
    inner = RecordingLauncher(executable=str(standin_executable()), policy=FAST_STOP)
    inner.seen = seen
    said: list[str] = []
    results, errors = [], []

    def train(i: int) -> None:
        launcher = BookingLauncher(inner, broker(gpus, f"run-{i}", said))
        try:
            results.append(run_training(plan_in(tmp_path / f"run-{i}"), launcher))
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    # Both GPUs are taken while the three jobs start, so all three wait and then race for two GPUs.
    blockers = [broker(gpus, "blocker", []).book(GpuDemand(1)) for _ in range(2)]
    threads = [threading.Thread(target=train, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 120
    while sum(line.startswith("waiting for 1 GPU of host") for line in said) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sum(line.startswith("waiting for 1 GPU of host") for line in said) == 3, said
    for blocker in blockers:
        blocker.release()
    for thread in threads:
        thread.join(300)
    assert errors == [] and len(results) == 3
    assert sorted(gpu for gpu, _, _ in seen.jobs) in (["0", "0", "1"], ["0", "1", "1"])
    for a, (gpu_a, start_a, end_a) in enumerate(seen.jobs):
        for gpu_b, start_b, end_b in seen.jobs[a + 1:]:
            assert gpu_a != gpu_b or end_a <= start_b or end_b <= start_a, seen.jobs


class RecordingLedger(PrefectSlotLedger):
    """The real ledger, keeping the leases it took."""

    def __init__(self) -> None:
        super().__init__()
        self.leases: list[str] = []

    def take(self, names, lease_seconds):
        lease = super().take(names, lease_seconds)
        if lease is not None:
            self.leases.append(lease)
        return lease


def test_a_job_whose_lease_is_lost_is_stopped_and_the_retry_can_resume(prefect_api, tmp_path):
    gpus = host(0)
    said: list[str] = []
    ledger = RecordingLedger()
    launcher = BookingLauncher(ProcessLauncher(executable=str(standin_executable()), policy=FAST_STOP),
                               GpuBroker(gpus, ledger, "flow run 'lost'", notice=said.append, renew_seconds=0.5))
    plan = plan_in(tmp_path, epochs=40, seconds=0.5)
    failure: list[BaseException] = []
    thread = threading.Thread(target=lambda: _train_catching(plan, launcher, failure))
    thread.start()
    # The server forgets the lease (as a restarted server does): the next renewal finds it gone.
    # Training must be under way (its first checkpoint written, TAO's stop hook in place) before the lease
    # goes: a stop that arrives while the graph is built ends the trainer at once, with nothing to resume.
    deadline = time.monotonic() + 120
    while not list(plan.results_host_dir.glob("model.epoch-*.ckzip")) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert list(plan.results_host_dir.glob("model.epoch-*.ckzip")), "training never got going"
    [lease] = ledger.leases
    PrefectSlotLedger().release(lease)
    thread.join(120)
    assert failure and isinstance(failure[0], GpuLeaseLost) and failure[0].transient
    assert list(plan.results_host_dir.glob("model.epoch-*.ckzip")), "stopped gracefully: a checkpoint to resume from"


def _train_catching(plan, launcher, failure: list) -> None:
    try:
        run_training(plan, launcher)
    except BaseException as exc:  # noqa: BLE001 - the test reads it
        failure.append(exc)
