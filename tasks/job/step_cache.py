"""Steps done once: each GPU step of the chain (train, prune, retrain, export, gen_trt_engine) runs
in a folder named by what its result depends on, which every run with the same inputs reuses.

    <TAOFLOW_HOME>/steps/<step>-<first 24 hex digits of the key>/
        .lock      flock of the run doing the step; it writes its pid, host and start time in it
        results/   the step's results folder, which its container writes
        step.json  the completion record: the step's result and each artifact's size and SHA-256

The key (`step_key`) hashes the step, the image, the argv as TAO gets it, the environment, the texts
the step reads (the rewritten spec) and the content fingerprints of its inputs, never a run id: a
new run with the same inputs finds the step done and starts no container, and a retry of a failed
step runs in the same folder, where TAO resumes from its checkpoints.

Two runs with the same step in the same second: the second waits for the first's lock, then reuses
its record. The kernel drops a `flock` when its holder dies, so a killed run never blocks the step:
the next one takes over. A failed step records nothing.

`results/` is written by a container, so it is read as hostile input: an artifact is hashed only
when every part of its path is a folder or a file, not a link; a record whose artifacts changed is
stale, removed, and the step runs again. `step.json` is read the same way (no link, at most 1 MB,
bounded nesting): a damaged record counts as absent.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import socket
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence, TypeVar

from tasks.bounded_json import load_bounded
from tasks.errors import LaunchError
from tasks.files import DIR, FILE, NotRegular, describe, open_regular, path_kind, read_regular, write_atomic
from tasks.launch.plan import _SECRET_NAME
from tasks.launch.result_records import R, artifacts_of, from_record, inside, relative_inside, to_record
from tasks.launch.step_artifacts import ArtifactFacts, artifact_facts

KEY_FORMAT = "taoflow.step-key/1"
RECORD_FORMAT = "taoflow.step/1"
RECORD_FILE = "step.json"
LOCK_FILE = ".lock"
MAX_RECORD_BYTES = 1 << 20
#: A record nests six levels (record, result, fields, validations, one, its APs); far deeper is not ours.
_MAX_RECORD_DEPTH = 16
_STEP_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
Notice = Callable[[str], None]
T = TypeVar("T")


def key_document(step: str, *, image: str, argv: Sequence[str], env: Mapping[str, str],
                 texts: Mapping[str, str], inputs: Mapping[str, str]) -> bytes:
    """The canonical bytes `step_key` hashes: JSON, keys sorted, strings only (no float to format).

    The value of an environment variable named like a credential is replaced by its SHA-256, so it
    never appears here in clear. `argv` is the display form (the key masked): a key only decrypts,
    the step's output is the same with any key that opens the model, so a new key keeps the step's
    folder. (Export of an encrypted `.tlt` writes its `-k` into nvinfer_config.txt: a reused export
    carries the key it was made with.) GPU ids do not change a result: pass the argv before the
    launcher names the GPUs (`Command.with_gpu_index`).

    >>> document = key_document("export", image="tao:5", argv=["detectnet_v2", "export"],
    ...                         env={"NGC_API_KEY": "nvapi-secret", "TELEMETRY_OPT_OUT": "1"}, texts={}, inputs={})
    >>> b"nvapi-secret" in document, json.loads(document)["env"]["NGC_API_KEY"][:7]
    (False, 'sha256:')
    """
    document = {
        "format": KEY_FORMAT, "step": step, "image": image, "argv": list(argv),
        "env": {name: _hidden(value) if _SECRET_NAME.search(name) else value for name, value in env.items()},
        "texts": dict(texts), "inputs": dict(inputs),
    }
    for name in ("env", "texts", "inputs"):
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in document[name].items()):
            raise TypeError(f"step_key {name}: names and values must be strings")
    if not all(isinstance(arg, str) for arg in (step, image, *document["argv"])):
        raise TypeError("step_key step, image and argv must be strings")
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def step_key(step: str, *, image: str, argv: Sequence[str], env: Mapping[str, str], texts: Mapping[str, str],
             inputs: Mapping[str, str]) -> str:
    """The SHA-256 (hex) of everything the step's output depends on (`key_document`).

    >>> key = step_key("prune", image="nvcr.io/nvidia/tao/tao-toolkit:5.0.0-tf1.15.5",
    ...                argv=["detectnet_v2", "prune", "-m", "/workspace/taoflow/base_model/detector.hdf5"],
    ...                env={"TELEMETRY_OPT_OUT": "1"}, texts={}, inputs={"base_model": "sha256:3f2a"})
    >>> key[:16], StepFolder.under(Path("/home/taoflow"), "prune", key).root.name
    ('2aef07465ec14a9c', 'prune-2aef07465ec14a9cf26dd596')
    """
    return hashlib.sha256(key_document(step, image=image, argv=argv, env=env, texts=texts, inputs=inputs)).hexdigest()


def _hidden(value: str) -> str:
    return "sha256:" + hashlib.sha256(value.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class StepFolder:
    """The folder of one step instance: `root`, the step's name and its key (`step_key`)."""

    root: Path
    step: str
    key: str

    @classmethod
    def under(cls, home: Path, step: str, key: str) -> "StepFolder":
        """The step's folder under taoflow's home (`Workspace.root`): `<home>/steps/<step>-<key[:24]>`."""
        if not _STEP_NAME.fullmatch(step) or not _SHA256.fullmatch(key):
            raise ValueError(f"a step folder needs a step name like 'train' and a SHA-256 key, got {step!r}, {key!r}")
        return cls(Path(home) / "steps" / f"{step}-{key[:24]}", step, key)

    @property
    def results(self) -> Path:
        """The step's results folder: what its container writes (mount it as the results slot)."""
        return self.root / "results"

    @property
    def record_file(self) -> Path:
        return self.root / RECORD_FILE

    @contextmanager
    def holding(self, notice: Notice | None = None) -> Iterator[None]:
        """Hold the step's lock; another run holding it is waited for (said once through `notice`)."""
        self.results.mkdir(parents=True, exist_ok=True)
        lock = self.root / LOCK_FILE
        try:
            fd, _ = open_regular(str(lock), os.O_RDWR | os.O_CREAT)
        except NotRegular as exc:
            raise LaunchError(f"the step's lock file is a {describe(exc.kind)}", where=str(lock),
                              fix="remove it: taoflow makes its own") from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if notice is not None:
                    notice(f"waiting for another run doing the same {self.step} step ({_holder(fd)})")
                fcntl.flock(fd, fcntl.LOCK_EX)  # the kernel hands it over when the holder ends or dies
            # One write of a fixed-size record, never a truncate first: a waiter reading it sees the last
            # holder's note or this one, never an empty file.
            note = json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                               "since": time.strftime("%Y-%m-%dT%H:%M:%S")}).encode()
            os.pwrite(fd, note.ljust(_NOTE_BYTES), 0)
            yield
        finally:
            os.close(fd)  # and with it the flock

    def record(self) -> dict | None:
        """The completion record, or None when there is none or it is damaged, a link, too large."""
        data = read_regular(self.record_file, MAX_RECORD_BYTES)
        if data is None:
            return None
        try:
            record = load_bounded(data, _MAX_RECORD_DEPTH)
        except ValueError:
            return None
        return record if self._well_formed(record) else None

    def _well_formed(self, record: Any) -> bool:
        if not isinstance(record, dict) or not isinstance(record.get("result"), dict):
            return False
        if (record.get("format"), record.get("step"), record.get("key")) != (RECORD_FORMAT, self.step, self.key):
            return False
        artifacts = record.get("artifacts")
        return isinstance(artifacts, dict) and all(
            isinstance(entry, dict) and isinstance(entry.get("path"), str)
            and type(entry.get("size")) is int and isinstance(entry.get("sha256"), str)
            for entry in artifacts.values())

    def complete(self, result: dict, artifacts: Mapping[str, Path]) -> dict:
        """Record the step as done (atomically, durably): `result` and, for each artifact in the
        results folder, its path there, size and SHA-256. Returns the record."""
        listed = {}
        for name, path in artifacts.items():
            relative = relative_inside(Path(path), self.results, f"artifact {name}")
            facts = self._facts(relative)
            if facts is None:
                raise LaunchError(f"the step's artifact {name} is not a regular file in its results folder",
                                  where=str(path), fix="run the step again")
            listed[name] = {"path": relative, "size": facts.size_bytes, "sha256": facts.sha256}
        record = {"format": RECORD_FORMAT, "step": self.step, "key": self.key,
                  "completed": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "result": result, "artifacts": listed}
        data = json.dumps(record, sort_keys=True, separators=(",", ":"), allow_nan=False)
        if len(data) > MAX_RECORD_BYTES:
            raise LaunchError(f"the {self.step} step's record is {len(data)} bytes, more than the "
                              f"{MAX_RECORD_BYTES} taoflow reads back", where=str(self.record_file))
        write_atomic(self.record_file, data, durable=True)
        return record

    def valid(self) -> dict | None:
        """The recorded result when every artifact is still the regular file that was recorded (same
        size and SHA-256); else None, and a stale record is removed so the step runs again."""
        record = self.record()
        if record is None:
            return None
        for entry in record["artifacts"].values():
            facts = self._facts(entry["path"])
            if facts is None or (facts.size_bytes, facts.sha256) != (entry["size"], entry["sha256"]):
                self.forget()
                return None
        return record["result"]

    def forget(self) -> None:
        """Remove the completion record: the step runs again (in the same folder)."""
        self.record_file.unlink(missing_ok=True)

    def _facts(self, relative: str) -> ArtifactFacts | None:
        """Size and SHA-256 of results/<relative> when each folder on the way is a folder and the
        file a regular file, none of them a link; None otherwise."""
        try:
            path = inside(self.results, relative)
        except ValueError:
            return None
        parts = Path(relative).parts
        for depth in range(1, len(parts)):
            if path_kind(str(self.results.joinpath(*parts[:depth]))) != DIR:
                return None
        if path_kind(str(path)) != FILE:
            return None
        try:
            return artifact_facts(path)
        except LaunchError:
            return None  # swapped for a link or removed since the look above


#: The holder's note: one page-sized write, read whole.
_NOTE_BYTES = 512


def _holder(fd: int, patience: float = 2.0) -> str:
    """Who holds the lock, from its note. The holder writes the note right after it takes the lock, so
    for a moment the note may still be its predecessor's (a process that has ended): wait for the
    current one, a little, before saying so."""
    deadline = time.monotonic() + patience
    while True:
        try:
            info = json.loads(os.pread(fd, _NOTE_BYTES, 0))
            pid, host = int(info["pid"]), str(info["host"])
            said = f"pid {pid} on host {host} since {info['since']}"
        except (OSError, ValueError, KeyError, TypeError):
            pid, host, said = None, None, "holder unknown"
        if (pid is not None and (host != socket.gethostname() or _alive(pid))) or time.monotonic() > deadline:
            return said
        time.sleep(0.02)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def run_once(folder: StepFolder, run: Callable[[], T], encode: Callable[[T], tuple[dict, Mapping[str, Path]]],
             decode: Callable[[dict], T], notice: Notice | None = None) -> tuple[T, bool]:
    """(result, reused): under the step's lock, the recorded result when it is valid, else the
    result of `run()`, recorded (`encode`: the record's result and the artifacts to hash). When
    `run` raises, nothing is recorded. `decode` raises ValueError for a record it cannot read: the
    step then runs again.

    >>> import tempfile
    >>> folder = StepFolder.under(Path(tempfile.mkdtemp()), "export", "0" * 64)
    >>> def export():
    ...     (folder.results / "model.onnx").write_bytes(b"onnx")
    ...     return "model.onnx"
    >>> def encode(name):
    ...     return {"onnx": name}, {"onnx": folder.results / name}
    >>> [run_once(folder, export, encode, lambda record: record["onnx"]) for _ in range(2)]
    [('model.onnx', False), ('model.onnx', True)]
    """
    with folder.holding(notice):
        recorded = folder.valid()
        if recorded is not None:
            try:
                return decode(recorded), True
            except ValueError as exc:
                if notice is not None:
                    notice(f"the {folder.step} step's record cannot be read back ({exc}): running the step again")
                folder.forget()
        result = run()
        record, artifacts = encode(result)
        folder.complete(record, artifacts)
        return result, False


def run_step(folder: StepFolder, kind: type[R], run: Callable[[], R], notice: Notice | None = None) -> tuple[R, bool]:
    """`run_once` for a step that returns one of the launch results (`tasks.launch.result_records`):
    the result recorded with its paths relative to the folder's results, its artifacts hashed.

    >>> import tempfile
    >>> from tasks.launch import PruneResult
    >>> folder = StepFolder.under(Path(tempfile.mkdtemp()), "prune", "0" * 64)
    >>> def prune():
    ...     (folder.results / "pruned.hdf5").write_bytes(b"pruned")
    ...     return PruneResult(folder.results / "pruned.hdf5", 0.2868, None, None)
    >>> [reused for _, reused in (run_step(folder, PruneResult, prune) for _ in range(2))]
    [False, True]
    """
    def encode(result: R) -> tuple[dict, Mapping[str, Path]]:
        return to_record(result, folder.results), artifacts_of(result)

    return run_once(folder, run, encode, lambda record: from_record(kind, record, folder.results), notice)
