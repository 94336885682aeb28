"""What the judges of prune, export and gen_trt_engine share (evaluate's too, for the failure): one
launch's evidence (its own status.json lines, the console tail, the exit code, the files on the host)
and the failure they raise, recorded in the attempt journal so that a retry is made only where it can help."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from tasks.errors import TaoJobFailed
from tasks.files import FILE, path_kind
from tasks.launch.attempts import Attempt, AttemptJournal
from tasks.launch.base import JobOutcome
from tasks.launch.judge import Evidence
from tasks.launch.plan import LaunchPlan
from tasks.redact import Redactor

KILLED = "killed"
CRASHED = "crashed"
NOT_STARTED = "ended before writing any status"
DID_NOTHING = "ended without doing anything"
INTERRUPTED = "interrupted"
OUT_OF_GPU_MEMORY = "out of GPU memory"
OUTPUT_MISSING = "left an output missing"
GPUS_NOT_VISIBLE = "GPUs not visible"
MODEL_MISSING = "model not found"
DISAGREE = "status.json and the console disagree"


@dataclass(frozen=True)
class StepEvidence(Evidence):
    """The launch's own status lines besides what `Evidence` holds (a re-run appends to status.json)."""

    records: tuple[dict, ...] = ()

    @property
    def last(self) -> dict:
        return self.records[-1] if self.records else {}


def step_evidence(outcome: JobOutcome) -> StepEvidence:
    records = tuple(r for r in outcome.status.records if isinstance(r, dict))
    last = records[-1] if records else {}
    status, message = last.get("status"), last.get("message")
    return StepEvidence(exit_code=outcome.exit_code, last_status=status if isinstance(status, str) else None,
                        last_message=message if isinstance(message, str) else None, num_epochs=None, start_epoch=0,
                        checkpoint=None, reached=0, model=None, console=list(outcome.log_tail),
                        cancelled=outcome.cancelled, records=records)


def host_file(plan: LaunchPlan, container_path: str | None) -> Path | None:
    """The host file behind an in-container path when it is a regular, non-empty file (a link or a
    FIFO the container left there is no output)."""
    host = plan.mounts.host_path(container_path) if container_path else None
    if host is None or path_kind(str(host)) != FILE:
        return None
    return host if host.stat().st_size > 0 else None


def number(value) -> float | None:
    """A JSON number as TAO writes it (never a bool, never NaN)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return None
    return float(value)


def last_match(pattern: re.Pattern[str], lines: list[str]) -> re.Match[str] | None:
    for line in reversed(lines):
        if (found := pattern.search(line)) is not None:
            return found
    return None


def fail(error: type[TaoJobFailed], step: str, ending: str, evidence: Evidence, plan: LaunchPlan, *,
         final: frozenset[str], fixes: dict[str, str], detail: str = "",
         otherwise: str = "read TAO's error line above; a retry runs the step again") -> NoReturn:
    """Raise `error` for `ending`: transient unless the ending is final or the attempt before ended alike
    (evaluate's judge raises through it too)."""
    redact = Redactor(plan.secrets)
    tao_words = redact(evidence.last_message or "") if evidence.last_status == "FAILURE" else ""
    error_line = redact(evidence.tao_error or "")
    repeated = AttemptJournal(plan.attempts_file).record(
        Attempt(ending, tao_words or error_line, None, evidence.exit_code))
    said = f": {redact(detail)}" if detail else f": {tao_words}" if tao_words else ""
    raise error(
        f"{step} {ending}{said}",
        reason=ending,
        exit_code=evidence.exit_code,
        tao_error=error_line or tao_words or None,
        log_tail=evidence.console[-20:],
        transient=ending not in final and not repeated,
        where=str(plan.results_host_dir),
        fix=("the previous attempt failed the same way; read TAO's words above" if repeated else
             fixes.get(ending, otherwise)),
    )
