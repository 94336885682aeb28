"""The attempt journal: how each attempt of a job ended, so a retry that cannot help is not made.

TAO writes `model.epoch-0.ckzip` as soon as training starts, so even a deterministic crash (a
corrupt image) leaves a folder that looks resumable, and every retry would fail the same way
at the same point (`tao-source-facts.md` §2). The journal keeps each attempt's signature (how it
ended, TAO's own error line, the epoch it reached) beside the results folder — in taoflow's own
run folder, not in the container-written one — and a signature seen on the previous attempt
is not retried again.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class Attempt:
    """One judged attempt."""

    ending: str
    #: TAO's own words for the failure (its last status message or console error line).
    message: str
    #: Epochs completed when it ended (the point a repeat would fail at again).
    completed: int | None
    exit_code: int | None
    at: float = 0.0

    def same_failure(self, other: "Attempt") -> bool:
        return (self.ending, self.message, self.completed) == (other.ending, other.message, other.completed)


class AttemptJournal:
    """JSON lines, one per attempt, oldest first.

    >>> import tempfile
    >>> journal = AttemptJournal(Path(tempfile.mkdtemp()) / "attempts.jsonl")
    >>> journal.record(Attempt("crashed", "Invalid PNG data", 1, 255))
    False
    >>> journal.record(Attempt("crashed", "Invalid PNG data", 1, 255))
    True
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def entries(self) -> list[Attempt]:
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except (FileNotFoundError, UnicodeDecodeError):
            return []
        found = []
        for line in lines:
            try:
                data = json.loads(line)
                found.append(Attempt(**data))
            except (ValueError, TypeError):
                continue
        return found

    def record(self, attempt: Attempt) -> bool:
        """Append `attempt`; True when the attempt before it failed the very same way."""
        previous = self.entries()
        repeated = bool(previous) and previous[-1].same_failure(attempt)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(asdict(attempt) | {"at": attempt.at or time.time()}) + "\n")
        return repeated
