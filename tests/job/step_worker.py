"""One run doing a step through `run_once`, as its own process: the step cache's race and kill tests
start two of these on one step folder.

    python -m tests.job.step_worker FOLDER SIGNALS MODE

It writes `SIGNALS/ready-<pid>` and waits for `SIGNALS/go` (so two workers race from the same
moment); `notice` writes `SIGNALS/waiting-<pid>` (this worker found the lock held); its `run` writes
`SIGNALS/ran-<pid>` first, then `results/partial-<pid>` (what a killed TAO leaves to resume from),
then, by MODE: `quick` goes on; `until-waiter` waits for another worker's waiting-* file (so the
other really waited while this one ran) or ran-* file (both ran: the lock is broken); `hang` waits
for `SIGNALS/never` (to be killed mid-run).
It prints {"result", "reused", "pid"} as JSON.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from tasks.job.step_cache import StepFolder, run_once

KEY = "ab" * 32
#: A bound on every wait, so a broken test leaves no process behind for long.
BOUND_SECONDS = 300


def wait_for(predicate) -> None:
    deadline = time.monotonic() + BOUND_SECONDS
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit("step_worker: gave up waiting")
        time.sleep(0.01)


def main(root: Path, signals: Path, mode: str) -> None:
    pid = os.getpid()
    folder = StepFolder(root, "train", KEY)
    (signals / f"ready-{pid}").touch()
    wait_for((signals / "go").exists)

    def notice(message: str) -> None:
        (signals / f"waiting-{pid}").write_text(message)

    def run() -> dict:
        (signals / f"ran-{pid}").touch()
        resumed = sorted(p.name for p in folder.results.glob("partial-*"))
        (folder.results / f"partial-{pid}").write_text("a checkpoint")
        if mode == "until-waiter":  # or until the other runs too: a broken lock, which the test then sees
            wait_for(lambda: any(p.name not in (f"waiting-{pid}", f"ran-{pid}")
                                 for p in (*signals.glob("waiting-*"), *signals.glob("ran-*"))))
        elif mode == "hang":
            wait_for((signals / "never").exists)
        (folder.results / "weights").mkdir(exist_ok=True)
        (folder.results / "weights" / "detector.hdf5").write_text(f"trained by {pid}")
        return {"model": "weights/detector.hdf5", "by": pid, "resumed_from": resumed}

    def encode(result: dict):
        return result, {"model": folder.results / result["model"]}

    result, reused = run_once(folder, run, encode, lambda record: record, notice)
    print(json.dumps({"result": result, "reused": reused, "pid": pid}))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3])
