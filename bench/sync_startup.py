"""Where an unchanged `taoflow sync down` through the CLI spends its time: interpreter start-up,
imports, and the re-sync itself (listing and comparing), each measured in the same run.

- the interpreter: `python -c pass` with the same venv (site, .pth files), median of `ROUNDS`;
- the imports: the same re-sync with `-X importtime`, the top-level imports' cumulative times summed
  (the flag itself adds a little to them), the heaviest named;
- the CLI re-sync's wall time, median of `ROUNDS`, interleaved with the interpreter runs.

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


def _importtime(command: list[str], env: dict[str, str]) -> dict[str, float]:
    traced = subprocess.run([sys.executable, "-X", "importtime", *command], env=env, check=True,
                            capture_output=True, text=True)
    return top_imports(traced.stderr)


def startup_profile(resync: list[str], env: dict[str, str]) -> str:
    """The breakdown of the unchanged re-sync `resync` (a `taoflow sync down` command line)."""
    bare, whole = [], []
    for _ in range(ROUNDS):
        bare.append(_wall([sys.executable, "-c", "pass"], env))
        whole.append(_wall(resync, env))
    # What the bare interpreter imports (site, encodings) is in its start-up already.
    at_start = _importtime(["-c", "pass"], env)
    imports = {name: s for name, s in _importtime(resync, env).items() if name not in at_start}
    interpreter, total = statistics.median(bare), statistics.median(whole)
    imported = sum(imports.values())
    heaviest = sorted(imports.items(), key=lambda item: -item[1])[:5]
    rest = total - interpreter - imported
    return "\n".join([
        f"(a) the CLI's unchanged re-sync, median of {ROUNDS}: {total:.3f} s =",
        f"   {interpreter:.3f} s  interpreter start-up (`python -c pass`, same venv)",
        f"   {imported:.3f} s  imports (`-X importtime`, top level summed); heaviest: "
        + ", ".join(f"{name} {seconds:.3f}" for name, seconds in heaviest),
        f"   {rest:.3f} s  the rest: listing, comparing with the manifest, JSON answer, exit",
    ])
