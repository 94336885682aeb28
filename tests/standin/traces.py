"""NVIDIA's recorded endings (`../shared/reference/tao-traces/`) as test fixtures: loading them,
comparing what the stand-in writes with them structurally, and turning one into a replay bundle
the stand-in plays back through a real launcher."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.fixtures.services import service_missing

TRACES = (Path(__file__).resolve().parents[2] / "../shared/reference/tao-traces").resolve()
READINGS = ("zero-based", "one-based")
SCENARIOS = ("complete", "fail", "oom", "interrupted", "sigusr1", "spec_rejected", "rerun_finished")
#: Files that are not TAO's, so not compared: the stand-in's bookkeeping for the tests (where it
#: started, one-shot knobs) and taoflow's own run marker.
NOT_TAOS = re.compile(r"^(standin_starts\.txt|\.standin-[a-z-]+|\.taoflow-[a-z-]+)$")
#: Values compared exactly; every other scalar is compared by its JSON type.
EXACT_KEYS = {"status", "message", "verbosity", "epoch", "max_epoch", "Error"}
#: The progress hook's str(timedelta(...)) values: compared by form and by being zero (the first epoch
#: line of a session has no timing yet; the ETA of the last epoch is zero).
DURATION_KEYS = {"time_per_epoch", "eta"}
_TIMEDELTA = re.compile(r"(\d+ days?, )?\d+:\d\d:\d\d(\.\d{6})?")
_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ")


@dataclass(frozen=True)
class TrainTrace:
    reading: str
    scenario: str
    records: list[dict]
    files: list[str]
    console: list[str]
    exit_code: int

    def sessions(self) -> list[list[dict]]:
        """The records split where a new start of the trainer begins."""
        out: list[list[dict]] = []
        for record in self.records:
            if record.get("status") == "STARTED" or not out:
                out.append([])
            out[-1].append(record)
        return out


def traces_root() -> Path:
    if not TRACES.is_dir():
        service_missing(f"NVIDIA's recorded TAO endings at {TRACES}")
    return TRACES


def load_train_trace(reading: str, scenario: str) -> TrainTrace:
    folder = traces_root() / "train" / reading / scenario
    console = json.loads((folder / "console.json").read_text())
    return TrainTrace(
        reading=reading,
        scenario=scenario,
        records=[json.loads(line) for line in (folder / "status.json").read_text().splitlines() if line.strip()],
        files=[line.strip() for line in (folder / "files.txt").read_text().splitlines() if line.strip()],
        console=list(console["console"]),
        exit_code=int(console["exit_code"]),
    )


def shape(value: Any, key: str | None = None) -> Any:
    """A value's structure: dict keys in order with their shapes; scalars by JSON type, except the
    keys whose values carry meaning (status, message, epoch numbers, whether a duration is zero)."""
    if isinstance(value, dict):
        return [(k, shape(v, k)) for k, v in value.items()]
    if isinstance(value, list):
        return [shape(v) for v in value]
    if key in EXACT_KEYS:
        return value
    if key in DURATION_KEYS and isinstance(value, str):
        return ("timedelta", value == "0:00:00") if _TIMEDELTA.fullmatch(value) else ("not a timedelta", value)
    if isinstance(value, bool) or value is None:
        return type(value).__name__
    return {int: "number", float: "number", str: "string"}.get(type(value), type(value).__name__)


def result_files(results: Path) -> list[str]:
    """The files in a results folder as `files.txt` lists them (status.json and others' files aside)."""
    found = []
    for path in sorted(results.rglob("*")):
        relative = path.relative_to(results).as_posix()
        if path.is_dir() or relative == "status.json" or NOT_TAOS.match(path.name):
            continue
        found.append(relative)
    return found


def console_tail(lines: list[str], count: int) -> list[str]:
    """The last `count` console lines without the logger's timestamp (the traces record none)."""
    return [_TIMESTAMP.sub("", line) for line in lines[-count:]]


def structural_differences(trace: TrainTrace, records: list[dict], files: list[str], console: list[str],
                           exit_code: int | None) -> list[str]:
    """Every way the stand-in's ending differs from NVIDIA's: empty when they agree."""
    problems = []
    if len(records) != len(trace.records):
        problems.append(f"{len(records)} status lines, TAO wrote {len(trace.records)}")
    for number, (mine, theirs) in enumerate(zip(records, trace.records), start=1):
        if shape(mine) != shape(theirs):
            problems.append(f"status line {number}: {shape(mine)} != TAO's {shape(theirs)}")
    for number, record in enumerate(records, start=1):
        if not re.fullmatch(r"\d{1,2}/\d{1,2}/\d{4}", str(record.get("date"))) or not re.fullmatch(
                r"\d{1,2}:\d{1,2}:\d{1,2}", str(record.get("time"))):
            problems.append(f"status line {number}: date/time not in StatusLogger's M/D/YYYY H:M:S form")
    if sorted(files) != sorted(trace.files):
        problems.append(f"files {sorted(files)} != TAO's {sorted(trace.files)}")
    if console_tail(console, len(trace.console)) != trace.console:
        problems.append(f"console ends {console_tail(console, len(trace.console))} != TAO's {trace.console}")
    if exit_code != trace.exit_code:
        problems.append(f"exit code {exit_code} != TAO's {trace.exit_code}")
    return problems


def write_replay_bundle(trace: TrainTrace, bundle: Path, results: Path) -> None:
    """Lay out `trace` for the stand-in's replay mode.

    For `rerun_finished` the first start's lines and files are put into `results` beforehand,
    as the finished run left them; the bundle holds what the second start writes. The console's
    last line ("Execution status: …") and the exit code are left to the stand-in's wrapper,
    which must turn the script's exit into TAO's.
    """
    sessions = trace.sessions()
    replayed = sessions[-1]
    results.mkdir(parents=True, exist_ok=True)
    if len(sessions) > 1:
        earlier = [r for s in sessions[:-1] for r in s]
        (results / "status.json").write_text("".join(json.dumps(r) + "\n" for r in earlier))
        for name in trace.files:
            (results / name).parent.mkdir(parents=True, exist_ok=True)
            (results / name).write_text(f"left by the first run: {name}\n")
    bundle.mkdir(parents=True, exist_ok=True)
    (bundle / "status.json").write_text("".join(json.dumps(r) + "\n" for r in replayed))
    (bundle / "files.txt").write_text("".join(f"{name}\n" for name in trace.files))
    console = [line for line in trace.console if not line.startswith("Execution status:")]
    (bundle / "console.txt").write_text("".join(f"{line}\n" for line in console))
    (bundle / "exit_code").write_text("0\n" if trace.exit_code == 0 else "1\n")


def scenario_knobs(scenario: str, reading: str, at_epoch: int = 2) -> dict[str, str]:
    """The stand-in's environment that makes it end like `scenario` (in its `at_epoch`-th epoch)."""
    knobs = {
        "complete": {},
        "fail": {"TAO_STANDIN_FAIL_AT_EPOCH": str(at_epoch), "TAO_STANDIN_FAIL_MESSAGE": "Invalid PNG data, size 1234",
                 "TAO_STANDIN_FAIL_ERROR": "tensorflow.python.framework.errors_impl.InvalidArgumentError"},
        "oom": {"TAO_STANDIN_OOM": str(at_epoch)},
        "interrupted": {"TAO_STANDIN_STOP_AT_EPOCH": str(at_epoch), "TAO_STANDIN_STOP_SIGNAL": "INT"},
        "sigusr1": {"TAO_STANDIN_STOP_AT_EPOCH": str(at_epoch)},
        "spec_rejected": {"TAO_STANDIN_REJECT_SPEC": "1"},
        "rerun_finished": {},  # the same command twice
    }[scenario]
    return knobs | {"TAO_STANDIN_EPOCH_READING": reading.split("-")[0], "TAO_STANDIN_EPOCH_SECONDS": "0.02"}
