"""NVIDIA's recorded `detectnet_v2 evaluate` endings (`tao-traces/evaluate/`) as test fixtures, and
the structural comparison of what the stand-in leaves with them.

The console files hold `⋯ [not modeled: …]` lines for library output that was not reproduced;
after the last one the console is exact except timestamps, so that tail is what is compared.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from tests.standin.traces import NOT_TAOS, console_tail, shape, traces_root

EVALUATE_SCENARIOS = ("success", "missing_model", "wrong_key_tlt")
NOT_MODELED = "⋯"
_NUMBER = re.compile(r"\d+(\.\d+)?")


@dataclass(frozen=True)
class EvaluateTrace:
    scenario: str
    argv: list[str]
    records: list[dict]
    #: Files TAO left in -r, relative to it.
    files: list[str]
    console: list[str]
    exit_code: int

    def option(self, flag: str) -> str | None:
        return self.argv[self.argv.index(flag) + 1] if flag in self.argv else None

    @property
    def exact_tail(self) -> list[str]:
        """The console after the last not-modeled marker: exact except timestamps."""
        last = max((i for i, line in enumerate(self.console) if line.startswith(NOT_MODELED)), default=-1)
        return self.console[last + 1:]


def load_evaluate_trace(scenario: str) -> EvaluateTrace:
    folder = traces_root() / "evaluate" / scenario
    argv = (folder / "command.txt").read_text().split()
    results = argv[argv.index("-r") + 1]
    files = []
    for line in (folder / "files.txt").read_text().splitlines():
        if line.strip():
            path = line.split("\t")[0]
            files.append(str(Path(path).relative_to(results)))
    return EvaluateTrace(
        scenario=scenario,
        argv=argv,
        records=[json.loads(line) for line in (folder / "status.json").read_text().splitlines() if line.strip()],
        files=files,
        console=(folder / "console.txt").read_text().splitlines(),
        exit_code=int((folder / "exit_code").read_text()),
    )


def normalised(line: str) -> str:
    """A console line's structure: numbers, runs of blanks and table rules collapsed (tabulate sizes
    its columns to the numbers in them)."""
    line = _NUMBER.sub("#", line)
    return re.sub(r"-+", "-", re.sub(r"\s+", " ", line)).strip()


def evaluate_differences(trace: EvaluateTrace, records: list[dict], files: list[str], console: list[str],
                         exit_code: int | None, model: str) -> list[str]:
    """Every way the stand-in's ending differs from NVIDIA's (`model`: the -m the stand-in got)."""
    theirs_model = trace.option("-m") or ""
    theirs = [json.loads(json.dumps(r).replace(theirs_model, model)) for r in trace.records]
    problems = []
    if len(records) != len(theirs):
        problems.append(f"{len(records)} status lines, TAO wrote {len(theirs)}")
    for number, (mine, recorded) in enumerate(zip(records, theirs), start=1):
        if shape(mine) != shape(recorded):
            problems.append(f"status line {number}: {shape(mine)} != TAO's {shape(recorded)}")
    if sorted(files) != sorted(trace.files):
        problems.append(f"files {sorted(files)} != TAO's {sorted(trace.files)}")
    tail = console_tail(trace.exact_tail, len(trace.exact_tail))
    expected = [normalised(line.replace(theirs_model, model)) for line in tail]
    seen = [normalised(line) for line in console_tail(console, len(trace.exact_tail))]
    if seen != expected:
        problems.append(f"console ends {seen} != TAO's {expected}")
    if exit_code != trace.exit_code:
        problems.append(f"exit code {exit_code} != TAO's {trace.exit_code}")
    return problems


def left_in(results: Path) -> list[str]:
    """The files in an evaluation results folder, taoflow's and the stand-in's bookkeeping aside."""
    return sorted(p.relative_to(results).as_posix() for p in results.rglob("*")
                  if p.is_file() and not NOT_TAOS.match(p.name))
