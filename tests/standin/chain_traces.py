"""The chain's recorded endings as test fixtures: NVIDIA's `prune` and `export` (`../shared/reference/
tao-traces/`) and TAO Deploy's `gen_trt_engine` (`tests/standin/deploy_traces/`, recorded by running
TAO Deploy's own code), and the structural comparison of what the stand-in leaves with them.

Compared: every status.json line (keys in order, status, verbosity, and the message with paths mapped
and numbers blanked), the files the run created or changed (new, another size, or status.json
appended to; the rule of the recordings' files.txt), the console after the last `⋯ [not modeled: …]`
marker (the whole console where there is none) without timestamps, numbers blanked, and the exit code.
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass
from pathlib import Path

from tests.standin.evaluate_traces import NOT_MODELED, normalised
from tests.standin.traces import NOT_TAOS, console_tail, traces_root

DEPLOY_TRACES = Path(__file__).resolve().parent / "deploy_traces"
PRUNE_SCENARIOS = ("success", "no_hdf5_suffix")
EXPORT_SCENARIOS = ("success", "output_exists")
ENGINE_SCENARIOS = tuple(sorted(p.name for p in (DEPLOY_TRACES / "gen_trt_engine").iterdir() if p.is_dir()))
#: The options whose values are paths, mapped from the recording to the run being compared.
PATH_OPTIONS = ("-m", "-o", "-e", "--results_dir", "-r", "--engine_file", "--cal_cache_file", "--cal_image_dir",
                "--cal_data_file")
#: Keys whose values are compared (numbers blanked); the rest by JSON type.
WORDS = ("status", "verbosity", "message")


@dataclass(frozen=True)
class StepTrace:
    subtask: str
    scenario: str
    argv: list[str]
    records: list[dict]
    #: (path, bytes, "new" | "modified" | "") as files.txt lists them.
    files: list[tuple[str, int, str]]
    console: list[str]
    exit_code: int

    def option(self, flag: str) -> str | None:
        return self.argv[self.argv.index(flag) + 1] if flag in self.argv else None

    @property
    def results_dir(self) -> str:
        return self.option("--results_dir") or self.option("-r") or ""

    @property
    def changed(self) -> list[str]:
        """The files this run created or changed, relative to its results folder."""
        return sorted(posixpath.relpath(path, self.results_dir) for path, _, flag in self.files if flag)

    @property
    def exact_tail(self) -> list[str]:
        last = max((i for i, line in enumerate(self.console) if line.startswith(NOT_MODELED)), default=-1)
        return self.console[last + 1:]

    @property
    def runs(self) -> int:
        """How often the command ran on the folder: twice where status.json was appended to."""
        return 2 if any(flag == "modified" and path.endswith("status.json") for path, _, flag in self.files) else 1


def trace_folder(subtask: str, scenario: str) -> Path:
    if subtask == "gen_trt_engine":
        return DEPLOY_TRACES / subtask / scenario
    return traces_root() / subtask / scenario


def load_step_trace(subtask: str, scenario: str) -> StepTrace:
    folder = trace_folder(subtask, scenario)
    files = []
    for line in (folder / "files.txt").read_text().splitlines():
        if line.strip():
            path, size, *flag = line.split("\t")
            files.append((path, int(size), flag[0] if flag else ""))
    return StepTrace(
        subtask=subtask, scenario=scenario,
        argv=(folder / "command.txt").read_text().split()[1:],
        records=[json.loads(line) for line in (folder / "status.json").read_text().splitlines() if line.strip()],
        files=files, console=(folder / "console.txt").read_text().splitlines(),
        exit_code=int((folder / "exit_code").read_text()))


def recorded_contents(trace: StepTrace) -> dict[str, bytes]:
    """The files the recording kept whole (export's labels.txt and nvinfer_config.txt), by name."""
    folder = trace_folder(trace.subtask, trace.scenario) / "files"
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())} if folder.is_dir() else {}


def path_map(trace: StepTrace, seen_argv: list[str]) -> list[tuple[str, str]]:
    """(recorded path, path the compared run got) for every path option and its folder, longest first."""
    pairs: dict[str, str] = {}
    for flag in PATH_OPTIONS:
        theirs = trace.option(flag)
        mine = seen_argv[seen_argv.index(flag) + 1] if flag in seen_argv else None
        if theirs and mine:
            pairs[theirs] = mine
            if posixpath.basename(theirs) == posixpath.basename(mine):
                pairs.setdefault(posixpath.dirname(theirs), posixpath.dirname(mine))
    return sorted(pairs.items(), key=lambda pair: -len(pair[0]))


def mapped(text: str, pairs: list[tuple[str, str]]) -> str:
    for theirs, mine in pairs:
        text = text.replace(theirs, mine)
    return text


def _record_shape(record: dict, pairs: list[tuple[str, str]] | None) -> list:
    out = []
    for key, value in record.items():
        if key in WORDS and isinstance(value, str):
            out.append((key, normalised(mapped(value, pairs) if pairs else value)))
        elif isinstance(value, dict):
            out.append((key, _record_shape(value, pairs)))
        else:
            out.append((key, type(value).__name__ if not isinstance(value, (int, float)) or isinstance(value, bool)
                        else "number"))
    return out


def step_differences(trace: StepTrace, records: list[dict], changed: list[str], console: list[str],
                     exit_code: int | None, seen_argv: list[str]) -> list[str]:
    """Every way the stand-in's ending differs from the recording: empty when they agree."""
    pairs = path_map(trace, seen_argv)
    problems = []
    if len(records) != len(trace.records):
        problems.append(f"{len(records)} status lines, TAO wrote {len(trace.records)}")
    for number, (mine, theirs) in enumerate(zip(records, trace.records), start=1):
        ours, recorded = _record_shape(mine, None), _record_shape(theirs, pairs)
        if ours != recorded:
            problems.append(f"status line {number}: {ours} != TAO's {recorded}")
    if sorted(changed) != trace.changed:
        problems.append(f"changed files {sorted(changed)} != TAO's {trace.changed}")
    expected = [normalised(mapped(line, pairs)) for line in console_tail(trace.exact_tail, len(trace.exact_tail))]
    seen = [normalised(line) for line in console_tail(console, len(trace.exact_tail))]
    if seen != expected:
        problems.append("console ends\n  " + "\n  ".join(seen) + "\n!= TAO's\n  " + "\n  ".join(expected))
    if exit_code != trace.exit_code:
        problems.append(f"exit code {exit_code} != TAO's {trace.exit_code}")
    return problems


def snapshot(results: Path) -> dict[str, tuple[int, bytes | None]]:
    """Each file's size (and status.json's bytes) in a results folder, taoflow's bookkeeping aside."""
    return {p.relative_to(results).as_posix(): (p.stat().st_size, p.read_bytes() if p.name == "status.json" else None)
            for p in sorted(results.rglob("*")) if p.is_file() and not NOT_TAOS.match(p.name)}


def changed_files(before: dict, after: dict) -> list[str]:
    return sorted(name for name, state in after.items() if before.get(name) != state)
