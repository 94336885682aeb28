"""`taoflow plan` on the demo config: target < 3 s, no Prefect server, no GPU.

Baseline measured in the same run: `taoflow --version`, the cost of starting the CLI at all,
so the ratio shows what planning itself adds (staging in place, spec rewrite and check,
validation of 64 images, launch plan).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tasks.job.demo import write_demo_config


def timed(argv: list[str], runs: int = 5) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        config = write_demo_config(Path(tmp) / "demo")
        cli = [sys.executable, "-m", "taoflow"]
        baseline = timed(cli + ["--version"])
        plan = timed(cli + ["plan", str(config)])
    print(f"taoflow --version (baseline): {baseline:.2f} s")
    print(f"taoflow plan demo.yaml:       {plan:.2f} s  ({plan / baseline:.1f}x the baseline; target < 3 s: "
          f"{'met' if plan < 3 else 'MISSED'})")


if __name__ == "__main__":
    main()
