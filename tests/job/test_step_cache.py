"""The step cache (`tasks/job/step_cache.py`): what the key is made of, real processes racing for one
step and one killed while it runs, and a results folder or record changed behind taoflow's back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tasks.job.step_cache import MAX_RECORD_BYTES, StepFolder, key_document, run_once, step_key
from tasks.launch import train_command
from tasks.spec import rewrite_spec
from tests.job.step_worker import KEY

REPO = Path(__file__).resolve().parents[2]
INGREDIENTS = dict(
    image="nvcr.io/nvidia/tao/tao-toolkit:5.0.0-tf1.15.5",
    argv=("detectnet_v2", "train", "-e", "/workspace/taoflow/specs/spec.txt", "-r", "/workspace/taoflow/results"),
    env={"TELEMETRY_OPT_OUT": "1", "TAO_STANDIN_EPOCH_SECONDS": "0.1"},
    texts={"spec": "training_config { num_epochs: 3 }\n"},
    inputs={"training_data": "sha256:aaaa", "base_model": "sha256:bbbb"},
)


def key_with(**changes) -> str:
    return step_key(changes.pop("step", "train"), **(INGREDIENTS | changes))


# --- the key ---------------------------------------------------------------------------------------


def test_every_ingredient_changes_the_key():
    keys = {
        "as is": key_with(),
        "step": key_with(step="retrain"),
        "image": key_with(image="nvcr.io/nvidia/tao/tao-toolkit:5.5.0-tf1.15.5"),
        "argv": key_with(argv=(*INGREDIENTS["argv"][:-1], "/workspace/taoflow/other")),
        "env value": key_with(env=INGREDIENTS["env"] | {"TAO_STANDIN_EPOCH_SECONDS": "0.2"}),
        "env name": key_with(env=INGREDIENTS["env"] | {"TF_CPP_MIN_LOG_LEVEL": "3"}),
        "spec text": key_with(texts={"spec": "training_config { num_epochs: 4 }\n"}),
        "input fingerprint": key_with(inputs=INGREDIENTS["inputs"] | {"base_model": "sha256:cccc"}),
        "input name": key_with(inputs={"evaluation_data": "sha256:aaaa", "base_model": "sha256:bbbb"}),
    }
    assert len(set(keys.values())) == len(keys)
    reordered = {name: INGREDIENTS["env"][name] for name in reversed(INGREDIENTS["env"])}
    assert key_with(env=reordered) == keys["as is"]
    assert all(len(key) == 64 and int(key, 16) >= 0 for key in keys.values())


def test_a_credential_is_hashed_never_in_clear_and_the_tao_key_is_not_an_ingredient(tmp_path):
    env = INGREDIENTS["env"] | {"NGC_API_KEY": "nvapi-very-secret", "AZURE_STORAGE_SAS_TOKEN": "sv=2024&sig=abc"}
    document = key_document("train", **(INGREDIENTS | {"env": env}))
    assert b"nvapi-very-secret" not in document and b"sig=abc" not in document
    assert json.loads(document)["env"]["NGC_API_KEY"].startswith("sha256:")
    assert key_with(env=env | {"NGC_API_KEY": "nvapi-other"}) != key_with(env=env)

    # The TAO key travels in the argv, masked in the display form: any key gives the same step.
    first, second = (train_command(num_epochs=3, key=key, key_reason="a .tlt model") for key in ("key-one", "key-two"))
    assert first.argv != second.argv and first.display_argv() == second.display_argv()
    assert key_with(argv=first.display_argv()) == key_with(argv=second.display_argv())
    assert b"key-one" not in key_document("train", **(INGREDIENTS | {"argv": first.display_argv()}))

    folder = StepFolder.under(tmp_path, "train", key_with(env=env))
    run_once(folder, lambda: "done", lambda r: ({"r": r}, {}), lambda record: record["r"])
    assert b"nvapi-very-secret" not in folder.record_file.read_bytes()


def test_the_key_is_the_same_in_every_process():
    program = ("import json, sys; from tasks.job.step_cache import step_key; "
               "given = json.load(sys.stdin); given['argv'] = tuple(given['argv']); "
               "print(step_key('train', **given))")
    seen = set()
    for seed in ("0", "1", "4242"):
        done = subprocess.run([sys.executable, "-c", program], input=json.dumps(INGREDIENTS), capture_output=True,
                              text=True, cwd=REPO, env=os.environ | {"PYTHONHASHSEED": seed}, check=True)
        seen.add(done.stdout.strip())
    assert seen == {key_with()}


def test_a_new_random_seed_in_the_spec_is_a_new_step():
    """docs/chain.md: to train again on identical inputs, change random_seed (spec_overrides)."""
    spec = (REPO / "specs" / "demo_train_resnet18.txt").read_text()
    as_given, reseeded = (rewrite_spec(spec, overrides=overrides).text for overrides in ({}, {"random_seed": "43"}))
    assert key_with(texts={"spec": as_given}) == key_with(texts={"spec": rewrite_spec(spec).text})
    assert key_with(texts={"spec": reseeded}) != key_with(texts={"spec": as_given})


def test_a_key_must_be_made_of_strings():
    with pytest.raises(TypeError, match="env"):
        key_with(env={"TAO_STANDIN_EPOCH_SECONDS": 0.1})
    with pytest.raises(ValueError, match="step name"):
        StepFolder.under(Path("/tmp"), "../train", key_with())


# --- runs racing for one step (real processes) --------------------------------------------------


def wait_for(predicate, what: str, bound: float = 120.0) -> None:
    """A bound on a wait for something that must happen, never a measurement."""
    deadline = time.monotonic() + bound
    while not predicate():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.02)


def start_worker(folder: StepFolder, signals: Path, mode: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tests.job.step_worker", str(folder.root), str(signals), mode],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(worker: subprocess.Popen) -> dict:
    out, err = worker.communicate(timeout=300)
    assert worker.returncode == 0, err
    return json.loads(out)


@pytest.fixture
def step_folder(tmp_path):
    signals = tmp_path / "signals"
    signals.mkdir()
    workers: list[subprocess.Popen] = []
    yield StepFolder(tmp_path / "steps" / "train-x", "train", KEY), signals, workers
    for worker in workers:
        if worker.poll() is None:
            worker.kill()
            worker.wait()


def test_two_runs_doing_the_same_step_at_once_run_it_once(step_folder):
    folder, signals, workers = step_folder
    workers += [start_worker(folder, signals, "until-waiter") for _ in range(2)]
    wait_for(lambda: len(list(signals.glob("ready-*"))) == 2, "both workers to be ready")
    (signals / "go").touch()
    first, second = sorted((finish(w) for w in workers), key=lambda out: out["reused"])

    assert [p.name for p in signals.glob("ran-*")] == [f"ran-{first['pid']}"]
    assert (first["reused"], second["reused"]) == (False, True)
    assert second["result"] == first["result"] and first["result"]["by"] == first["pid"]
    said = (signals / f"waiting-{second['pid']}").read_text()
    assert said.startswith(f"waiting for another run doing the same train step (pid {first['pid']} on host ")
    assert folder.valid() == first["result"]


def test_a_run_killed_mid_step_leaves_the_step_to_the_run_waiting_for_it(step_folder):
    folder, signals, workers = step_folder
    (signals / "go").touch()
    holder = start_worker(folder, signals, "hang")
    workers.append(holder)
    wait_for((signals / f"ran-{holder.pid}").exists, "the first run to be inside its step")
    waiter = start_worker(folder, signals, "quick")
    workers.append(waiter)
    wait_for((signals / f"waiting-{waiter.pid}").exists, "the second run to wait for the first")
    assert folder.record() is None and holder.poll() is None  # the kill happens mid-run

    os.kill(holder.pid, signal.SIGKILL)
    assert holder.wait() == -signal.SIGKILL
    taken_over = finish(waiter)

    assert taken_over["reused"] is False and taken_over["result"]["by"] == waiter.pid
    assert taken_over["result"]["resumed_from"] == [f"partial-{holder.pid}"]  # same folder: TAO resumes there
    assert folder.valid() == taken_over["result"]


def test_two_threads_of_one_process_doing_the_same_step_run_it_once(tmp_path):
    """Two task runs in one worker process: each holding opens its own lock file description, so they exclude
    each other as two processes do."""
    folder = StepFolder.under(tmp_path, "prune", KEY)
    waiting, ran, outcomes = threading.Event(), [], []

    def run() -> str:
        ran.append(threading.get_ident())
        assert waiting.wait(120), "the other thread never waited"
        return "pruned"

    def one_run() -> None:
        outcomes.append(run_once(folder, run, lambda r: ({"r": r}, {}), lambda record: record["r"],
                                 lambda message: waiting.set()))

    threads = [threading.Thread(target=one_run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert len(ran) == 1 and sorted(outcomes) == [("pruned", False), ("pruned", True)]


# --- what changes behind taoflow's back -------------------------------------------------------------


class Step:
    """A step whose run writes weights/detector.hdf5 and counts its runs."""

    def __init__(self, folder: StepFolder) -> None:
        self.folder, self.runs = folder, 0

    def run(self) -> str:
        """Clears what an earlier attempt left, as `prepare_outputs` does (a link removed, never followed)."""
        self.runs += 1
        weights = self.folder.results / "weights"
        if weights.is_symlink():
            weights.unlink()
        weights.mkdir(exist_ok=True)
        (weights / "detector.hdf5").unlink(missing_ok=True)
        (weights / "detector.hdf5").write_bytes(b"weights " * 100)
        return "weights/detector.hdf5"

    def encode(self, model: str):
        return {"model": model}, {"model": self.folder.results / model}

    def __call__(self, notice=None) -> tuple[str, bool]:
        return run_once(self.folder, self.run, self.encode, lambda record: record["model"], notice)


@pytest.fixture
def done(tmp_path) -> Step:
    step = Step(StepFolder.under(tmp_path / "home", "train", KEY))
    assert step() == ("weights/detector.hdf5", False) and step() == ("weights/detector.hdf5", True)
    assert step.runs == 1
    return step


def _flip_a_byte(model: Path, outside: Path) -> None:
    data = bytearray(model.read_bytes())
    data[0] ^= 1
    model.write_bytes(bytes(data))


def _same_bytes_through_a_link(model: Path, outside: Path) -> None:
    (outside / "detector.hdf5").write_bytes(model.read_bytes())
    model.unlink()
    model.symlink_to(outside / "detector.hdf5")


def _folder_through_a_link(model: Path, outside: Path) -> None:
    (outside / "detector.hdf5").write_bytes(model.read_bytes())
    model.unlink()
    model.parent.rmdir()
    model.parent.symlink_to(outside)


def _removed(model: Path, outside: Path) -> None:
    model.unlink()


@pytest.mark.parametrize("tamper", [_flip_a_byte, _same_bytes_through_a_link, _folder_through_a_link, _removed])
def test_a_changed_artifact_makes_the_step_run_again(done, tmp_path, tamper):
    outside = tmp_path / "outside"
    outside.mkdir()
    tamper(done.folder.results / "weights" / "detector.hdf5", outside)

    assert done.folder.valid() is None and not done.folder.record_file.exists()  # the stale record is gone
    assert done() == ("weights/detector.hdf5", False) and done.runs == 2
    assert done() == ("weights/detector.hdf5", True) and done.runs == 2


def _garbage(record: Path, outside: Path) -> None:
    record.write_bytes(b"\x00\xff not json")


def _cut_short(record: Path, outside: Path) -> None:
    record.write_bytes(record.read_bytes()[:40])


def _oversized(record: Path, outside: Path) -> None:
    record.write_bytes(record.read_bytes() + b" " * MAX_RECORD_BYTES)


def _a_link_to_a_good_record(record: Path, outside: Path) -> None:
    (outside / "step.json").write_bytes(record.read_bytes())
    record.unlink()
    record.symlink_to(outside / "step.json")


def _a_fifo(record: Path, outside: Path) -> None:
    record.unlink()
    os.mkfifo(record)


def _deeply_nested(record: Path, outside: Path) -> None:
    record.write_bytes(b"[" * 100_000)


def _edited(**changes):
    def edit(record: Path, outside: Path) -> None:
        document = json.loads(record.read_bytes())
        record.write_text(json.dumps(document | changes))
    edit.__name__ = "_" + "_".join(changes)
    return edit


@pytest.mark.parametrize("damage", [
    _garbage, _cut_short, _oversized, _a_link_to_a_good_record, _a_fifo, _deeply_nested,
    _edited(key="cd" * 32), _edited(step="export"), _edited(format="taoflow.step/0"), _edited(result=[1]),
    _edited(artifacts={"model": {"path": "weights/detector.hdf5", "size": "800", "sha256": "0"}}),
    _edited(artifacts={"model": {"path": "../../outside/detector.hdf5", "size": 800, "sha256": "0" * 64}}),
], ids=lambda damage: damage.__name__.strip("_"))
def test_a_damaged_record_counts_as_absent(done, tmp_path, damage):
    outside = tmp_path / "outside"
    outside.mkdir()
    damage(done.folder.record_file, outside)

    assert done.folder.valid() is None
    assert done() == ("weights/detector.hdf5", False) and done.runs == 2
    assert done() == ("weights/detector.hdf5", True) and done.runs == 2


def test_a_record_the_caller_cannot_read_back_runs_the_step_again(done):
    said = []
    run_once(done.folder, done.run, done.encode, lambda record: int(record["model"]), said.append)
    assert done.runs == 2 and "cannot be read back" in said[0]


def test_a_failed_run_records_nothing_and_the_retry_runs_in_the_same_folder(tmp_path):
    folder = StepFolder.under(tmp_path, "export", KEY)
    step = Step(folder)

    def fails() -> str:
        (folder.results / "checkpoint").write_text("half done")
        raise RuntimeError("export failed")

    with pytest.raises(RuntimeError):
        run_once(folder, fails, step.encode, lambda record: record["model"])
    assert folder.record() is None and (folder.results / "checkpoint").exists()
    assert step() == ("weights/detector.hdf5", False) and step() == ("weights/detector.hdf5", True)


def test_an_artifact_outside_the_results_folder_is_not_recorded(tmp_path):
    from tasks.launch import RecordError

    folder = StepFolder.under(tmp_path / "home", "engine", KEY)
    elsewhere = tmp_path / "calibration.bin"
    elsewhere.write_bytes(b"cache")
    with pytest.raises(RecordError, match="not inside the results folder"):
        run_once(folder, lambda: "x", lambda r: ({}, {"cal_cache": elsewhere}), lambda record: "x")
    assert folder.record() is None
