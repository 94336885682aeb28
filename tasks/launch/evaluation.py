"""How a `detectnet_v2 evaluate` ended and what it measured, decided as TAO really behaves.

What NVIDIA's code does (`tao-source-facts.md` §8-9, the endings in `tao-traces/evaluate/`):

- success is exit 0 **and** a last status line SUCCESS "Evaluation finished successfully.";
- a spec refused by TAO's validator and a wrong key for a `.tlt` model end FAILURE "Evaluation was
  interrupted" with exit 0 and "Execution status: PASS" (the script swallows `sys.exit`);
- a missing model ends FAILURE "Pretrained model not found at …", exit 255;
- `<-r>/status.json` is opened with "w", so it holds this launch's lines only;
- the metrics are the last line's `categorical.average_precision` {class: AP %} and
  `kpi["mean average precision"]`, rounded to 4 places; the console prints the mAP with 4 places
  and a table, sorted by class name, of the unrounded APs: the cross-check. A NaN AP counts as 0.

An infinite AP, or an mAP that is not finite, is no measurement TAO makes (its mAP is the plain
mean with NaN APs as 0): such a result is refused, never promoted (an `Infinity` mAP once became
the champion's, and `champion.json` was no longer JSON).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from tasks.errors import EvaluationFailed
from tasks.launch.base import JobOutcome
from tasks.launch.judge import OOM_MARKERS, SPEC_MARKERS, Evidence
from tasks.launch.plan import LaunchPlan
from tasks.launch.step_verdict import CRASHED, DISAGREE, INTERRUPTED, KILLED, MODEL_MISSING, OUT_OF_GPU_MEMORY, fail

SUCCESS_MESSAGE = "Evaluation finished successfully."
INTERRUPTED_MESSAGE = "Evaluation was interrupted"
MODEL_NOT_FOUND_PREFIX = "Pretrained model not found at"

COMPLETED = "completed"
SPEC_REJECTED = "spec rejected"
WRONG_KEY = "wrong key or unreadable model"
DID_NOTHING = "ended without evaluating"
NO_METRICS = "reported no metrics"
NOT_FINITE = "reported a metric that is not a finite number"

#: Endings a retry cannot change without a change to the spec, the model, the key or the machine.
FINAL_ENDINGS = frozenset({SPEC_REJECTED, WRONG_KEY, MODEL_MISSING, OUT_OF_GPU_MEMORY, DID_NOTHING, NO_METRICS,
                           DISAGREE, NOT_FINITE})
#: Rounding of status.json (4 places) plus float noise.
TOLERANCE = 0.00051

_TABLE_ROW = re.compile(r"^\|\s*(?P<name>[^|]*?)\s*\|\s*(?P<ap>[-+0-9.eE]+|nan)\s*\|\s*$")
_MAP_LINE = re.compile(r"Mean average_precision \(in %\):\s*(?P<map>[-+0-9.eE]+|nan)")


@dataclass(frozen=True)
class EvaluationResult:
    """What `evaluate` measured: AP per class and mAP in percent, as status.json reports them."""

    results_dir: Path
    #: The model evaluated (-m), as the command named it.
    model: str
    average_precision: dict[str, float]
    mean_average_precision: float
    validation_cost: float | None = None
    #: The console table's unrounded APs (empty when the table was not in the log tail).
    console_table: dict[str, float] = field(default_factory=dict)
    exit_code: int | None = 0
    duration_s: float = 0.0


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return None


def _ap(value: Any) -> float | None:
    number = _number(value)
    return 0.0 if number is not None and math.isnan(number) else number  # TAO counts a NaN AP as 0 in the mean


def not_finite(ap: dict[str, float], mean: float | None) -> str | None:
    """What is not a finite number among the metrics, or None.

    >>> not_finite({"car": float("inf")}, 70.0), not_finite({"car": 70.0}, float("nan"))
    ('AP of car is inf', 'mAP is nan')
    """
    bad = [f"AP of {name} is {value}" for name, value in ap.items() if not math.isfinite(value)]
    if mean is not None and not math.isfinite(mean):
        bad.insert(0, f"mAP is {mean}")
    return ", ".join(bad) or None


def status_metrics(record: dict | None) -> tuple[dict[str, float], float | None, float | None]:
    """(AP per class, mAP, validation cost) from a status line (the sticky dicts of the last one).

    >>> status_metrics({"categorical": {"average_precision": {"car": 86.1218}},
    ...                 "kpi": {"validation cost": 0.0001, "mean average precision": 86.1218}})
    ({'car': 86.1218}, 86.1218, 0.0001)
    """
    record = record if isinstance(record, dict) else {}
    categorical = record.get("categorical") if isinstance(record.get("categorical"), dict) else {}
    raw = categorical.get("average_precision") if isinstance(categorical.get("average_precision"), dict) else {}
    kpi = record.get("kpi") if isinstance(record.get("kpi"), dict) else {}
    ap = {str(name): v for name, value in raw.items() if (v := _ap(value)) is not None}
    return ap, _number(kpi.get("mean average precision")), _number(kpi.get("validation cost"))


def console_metrics(lines: Iterable[str]) -> tuple[dict[str, float], float | None]:
    """The console's table {class: AP} and its "Mean average_precision (in %)" line.

    >>> console_metrics(["Mean average_precision (in %): 70.5230", "| class name | average precision (in %) |",
    ...                  "|    car     |     86.1218181818182     |"])
    ({'car': 86.1218181818182}, 70.523)
    """
    table: dict[str, float] = {}
    mean = None
    for line in lines:
        if (row := _TABLE_ROW.match(line.strip())) is not None:
            table[row.group("name")] = _ap(row.group("ap")) or 0.0
        elif (found := _MAP_LINE.search(line)) is not None:
            table.clear()  # a table belongs to the last mAP line before it
            mean = _number(found.group("map"))
    return table, mean


def disagreement(status_ap: dict[str, float], status_map: float | None, table: dict[str, float],
                 console_map: float | None) -> str | None:
    """Why the console contradicts status.json, or None (an absent table contradicts nothing)."""
    if table:
        if set(table) != set(status_ap):
            return f"the console's table lists {sorted(table)}, status.json {sorted(status_ap)}"
        for name, value in table.items():
            if abs(value - status_ap[name]) > TOLERANCE:
                return f"AP of {name}: console {value}, status.json {status_ap[name]}"
    if console_map is not None and status_map is not None and abs(console_map - status_map) > TOLERANCE:
        return f"mAP: console {console_map}, status.json {status_map}"
    return None


def classify(e: Evidence, *, has_metrics: bool, disagrees: bool) -> str:
    """The ending, as one of the names above (`e.model` is unused: evaluate writes no model)."""
    if e.exit_code == 0 and e.last_status == "SUCCESS":
        return NO_METRICS if not has_metrics else DISAGREE if disagrees else COMPLETED
    if e.exit_code in (137, 143) and not e.cancelled:
        return KILLED
    if any(marker in e.text for marker in OOM_MARKERS):
        return OUT_OF_GPU_MEMORY
    if (e.last_message or "").startswith(MODEL_NOT_FOUND_PREFIX) or MODEL_NOT_FOUND_PREFIX in e.text:
        return MODEL_MISSING
    if e.last_status == "FAILURE" and e.last_message == INTERRUPTED_MESSAGE:
        if any(marker in e.text for marker in SPEC_MARKERS):
            return SPEC_REJECTED
        return WRONG_KEY if e.exit_code == 0 else INTERRUPTED
    if e.exit_code == 0 and e.last_status is None:
        return DID_NOTHING
    return CRASHED


_FIXES = {
    SPEC_REJECTED: "run `taoflow spec check` on the spec and correct what it reports",
    WRONG_KEY: "TAO could not open the model: give the key it was encrypted with (key_block / TAO_KEY), "
               "or evaluate a TAO 5 .hdf5 model, which needs none",
    MODEL_MISSING: "the model file is not where -m points: check the published model folder",
    OUT_OF_GPU_MEMORY: "lower evaluation batch size (training_config.batch_size_per_gpu) or the input size",
    DID_NOTHING: "TAO's wrapper drops and splits arguments: a path with a space or an empty value; check the plan",
    NO_METRICS: "TAO said SUCCESS without metrics: check that the spec's evaluation_config names the classes",
    DISAGREE: "the run's log and status.json do not belong together; evaluate again into an empty folder",
    NOT_FINITE: "TAO reports finite percentages: this status.json is not TAO's; evaluate again into an empty folder",
}


def judge_evaluation(outcome: JobOutcome, plan: LaunchPlan) -> EvaluationResult:
    """An `EvaluationResult` when TAO measured the model; `EvaluationFailed` (retryable only when it can help)."""
    results = plan.results_host_dir
    assert results is not None, "an evaluation plan always has a results folder"
    status = outcome.status
    session = status.current
    ap, mean, cost = status_metrics(session.last_record)
    table, console_map = console_metrics(outcome.log_tail)
    why = disagreement(ap, mean, table, console_map)
    evidence = Evidence(exit_code=outcome.exit_code, last_status=session.last_status,
                        last_message=session.last_message, num_epochs=None, start_epoch=0, checkpoint=None,
                        reached=0, model=None, console=list(outcome.log_tail), cancelled=outcome.cancelled)
    ending = classify(evidence, has_metrics=bool(ap) and mean is not None, disagrees=why is not None)
    if ending in (COMPLETED, DISAGREE) and (unfinite := not_finite(ap, mean)):
        ending, why = NOT_FINITE, unfinite
    model = plan.command.model or "?"
    if ending == COMPLETED:
        assert mean is not None
        return EvaluationResult(results, model, ap, mean, cost, table, outcome.exit_code, outcome.duration_s)
    fail(EvaluationFailed, f"detectnet_v2 evaluate of {model}", ending, evidence, plan, final=FINAL_ENDINGS,
         fixes=_FIXES, detail=why if ending in (DISAGREE, NOT_FINITE) and why else "",
         otherwise="read TAO's error line above; a retry evaluates again")
