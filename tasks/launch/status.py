"""Following TAO's `status.json` (JSON lines, appended) and turning it into typed events.

TAO's status logger repeats its `categorical`/`graphical`/`kpi` dicts on every later line, so
an event is recognised by the line that *creates* it (an `epoch` key; the "Evaluation metrics
generated." message), never by the mere presence of a `kpi` dict.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

VALIDATION_MESSAGE = "Evaluation metrics generated."


@dataclass(frozen=True)
class EpochEvent:
    epoch: int
    max_epoch: int
    loss: float | None = None
    learning_rate: float | None = None
    eta: str | None = None

    @property
    def progress(self) -> float:
        """0-100, for a progress bar."""
        return 100.0 * self.epoch / self.max_epoch if self.max_epoch else 0.0


@dataclass(frozen=True)
class ValidationEvent:
    #: The epoch of the last epoch line before it (TAO does not repeat it on this line).
    epoch: int | None
    average_precision: dict[str, float] = field(default_factory=dict)
    mean_average_precision: float | None = None
    validation_cost: float | None = None


def _float(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


class StatusFollower:
    """Reads the lines appended to status.json since it was created (earlier runs' lines skipped)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._offset = path.stat().st_size if path is not None and path.exists() else 0
        self._partial = b""
        self.records: list[dict] = []
        self.epochs: list[EpochEvent] = []
        self.validations: list[ValidationEvent] = []

    def poll(self) -> list[EpochEvent | ValidationEvent]:
        """New events since the last poll (lines still being written wait for their newline)."""
        if self.path is None or not self.path.exists():
            return []
        size = self.path.stat().st_size
        if size < self._offset:  # truncated or replaced (dataset_convert overwrites it)
            self._offset, self._partial = 0, b""
        with self.path.open("rb") as handle:
            handle.seek(self._offset)
            chunk = handle.read()
        self._offset += len(chunk)
        *complete, self._partial = (self._partial + chunk).split(b"\n")
        events: list[EpochEvent | ValidationEvent] = []
        for raw in complete:
            try:
                record = json.loads(raw)
            except ValueError:
                continue  # a torn or foreign line must not stop the run's observation
            if not isinstance(record, dict):
                continue
            self.records.append(record)
            event = self._event(record)
            if event is not None:
                events.append(event)
        return events

    def _event(self, record: dict) -> EpochEvent | ValidationEvent | None:
        if "epoch" in record and "max_epoch" in record:
            graphical = record.get("graphical") or {}
            event = EpochEvent(
                epoch=int(record["epoch"]),
                max_epoch=int(record["max_epoch"]),
                loss=_float(graphical.get("loss")),
                learning_rate=_float(graphical.get("learning_rate")),
                eta=record.get("eta"),
            )
            self.epochs.append(event)
            return event
        if record.get("message") == VALIDATION_MESSAGE:
            kpi = record.get("kpi") or {}
            ap = (record.get("categorical") or {}).get("average_precision") or {}
            event = ValidationEvent(
                epoch=self.epochs[-1].epoch if self.epochs else None,
                average_precision={str(k): float(v) for k, v in ap.items() if _float(v) is not None},
                mean_average_precision=_float(kpi.get("mean average precision")),
                validation_cost=_float(kpi.get("validation cost")),
            )
            self.validations.append(event)
            return event
        return None

    @property
    def last_status(self) -> str | None:
        return self.records[-1].get("status") if self.records else None

    @property
    def last_message(self) -> str | None:
        return self.records[-1].get("message") if self.records else None

    @property
    def last_epoch(self) -> EpochEvent | None:
        return self.epochs[-1] if self.epochs else None
