"""Where an unchanged `taoflow sync down` through the CLI spends its time: interpreter start-up,
imports, and the re-sync itself (listing and comparing), each measured in the same run.

- the interpreter: `python -c pass` with the same venv (site, .pth files), median of `ROUNDS`;
- the imports: the same re-sync with `-X importtime`, the top-level imports' cumulative times summed
  (the flag itself adds a little to them), the heaviest named; the rest of that traced run (its wall
  time less the interpreter's and the imports') is the re-sync's own work;
- the CLI re-sync's wall time untraced; each a median of `ROUNDS`, interleaved.

Used by `bench/sync.py --profile` on setting (a).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

ROUNDS = 5


def _wall(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def top_imports(stderr: str) -> dict[str, float]:
    """{top-level module: cumulative seconds} from `-X importtime` output (nested ones are indented).

    >>> top_imports("import time: self [us] | cumulative | imported package\\n"
    ...             "import time:       100 |        100 |   typer.core\\nimport time:  50 |  2500 | typer")
    {'typer': 0.0025}
    """
    found: dict[str, float] = {}
    for line in stderr.splitlines():
        fields = line.split("|")
        if len(fields) != 3 or not fields[1].strip().isdigit():
            continue
        name = fields[2]
        if name.startswith(" ") and not name.startswith("  "):
            found[name.strip()] = found.get(name.strip(), 0.0) + int(fields[1]) / 1e6
    return found


def _traced(command: list[str], env: dict[str, str]) -> tuple[float, dict[str, float]]:
    """(wall seconds, top-level imports) of one run of `command` under `-X importtime`."""
    started = time.perf_counter()
    traced = subprocess.run([sys.executable, "-X", "importtime", *command], env=env, check=True,
                            capture_output=True, text=True)
    return time.perf_counter() - started, top_imports(traced.stderr)


def startup_profile(first: list[str], resync: list[str], env: dict[str, str]) -> str:
    """The breakdown of the unchanged re-sync `resync` after the first sync `first` (`taoflow sync down`).

    The imports and the rest are split within each traced run and the medians taken over the
    rounds: on a loaded machine one traced run alone can take longer than the untraced median.
    """
    subprocess.run(first, env=env, check=True, capture_output=True)
    # What the bare interpreter imports (site, encodings) is in its start-up already.
    at_start = set(_traced(["-c", "pass"], env)[1])
    bare, whole, traced, imported, rest = [], [], [], [], []
    heaviest: dict[str, list[float]] = {}
    for _ in range(ROUNDS):
        bare.append(_wall([sys.executable, "-c", "pass"], env))
        whole.append(_wall(resync, env))
        seconds, imports = _traced(resync, env)
        imports = {name: value for name, value in imports.items() if name not in at_start}
        traced.append(seconds)
        imported.append(sum(imports.values()))
        rest.append(seconds - bare[-1] - imported[-1])
        for name, value in imports.items():
            heaviest.setdefault(name, []).append(value)
    interpreter, imports_s = statistics.median(bare), statistics.median(imported)
    top = sorted(((statistics.median(v), k) for k, v in heaviest.items()), reverse=True)[:5]
    return "\n".join([
        f"(a) the CLI's unchanged re-sync, median of {ROUNDS}: {statistics.median(whole):.3f} s; "
        f"traced with -X importtime: {statistics.median(traced):.3f} s =",
        f"   {interpreter:.3f} s  interpreter start-up (`python -c pass`, same venv)",
        f"   {imports_s:.3f} s  imports (top level summed); heaviest: "
        + ", ".join(f"{name} {value:.3f}" for value, name in top),
        f"   {statistics.median(rest):.3f} s  the rest: listing, comparing with "
        "the manifest, JSON answer, exit",
    ])
