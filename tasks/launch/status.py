"""Reading TAO's `status.json` (JSON lines, appended by every start of the trainer) as sessions
of typed events.

What NVIDIA's code writes (`tao-source-facts.md` §1, `tao-traces/train/`):

- every start of `train` appends a session that opens with a STARTED line; a re-run or a resume
  adds a session below the earlier ones, so the file is read as a list of sessions;
- the `categorical`/`graphical`/`kpi` dicts are sticky (repeated on every later line), so an event
  is recognised by the line that *creates* it (an `epoch` key; the "Evaluation metrics generated."
  message), never by the mere presence of a `kpi` dict;
- the epoch line's number is `global_step // steps_per_epoch`, which reads `0 … N-1` (NVIDIA's
  documented reading) or `1 … N` (TF1 reference variables). In both readings the number equals the
  epochs completed when the line was written, and a validation follows the epoch it validates
  (zero-based: after the line of the epoch before; one-based: just before the line of its own
  epoch), which gives one rule for both: a validation belongs to the epoch after the session's last
  epoch line, or to the epoch of the next one when it came first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from tasks.bounded_json import load_bounded
from tasks.launch.results import read_untrusted

VALIDATION_MESSAGE = "Evaluation metrics generated."
STARTED = "STARTED"
#: A status.json larger than this is not TAO's (a few KB per session): read no further.
MAX_STATUS_BYTES = 64 * 1024 * 1024
#: TAO's lines nest three levels (`categorical.average_precision.<class>`); a far deeper one is foreign.
MAX_STATUS_DEPTH = 32


@dataclass(frozen=True)
class EpochEvent:
    """An epoch line, as TAO wrote it; `epoch` equals the epochs completed in both readings."""

    epoch: int
    max_epoch: int
    loss: float | None = None
    learning_rate: float | None = None
    eta: str | None = None

    @property
    def progress(self) -> float:
        """0-100: epochs completed of all, for a progress bar."""
        return 100.0 * min(self.epoch, self.max_epoch) / self.max_epoch if self.max_epoch else 0.0


@dataclass(frozen=True)
class ValidationEvent:
    """One validation during training, with the epoch it validated (1 = after the first epoch)."""

    epoch: int | None
    average_precision: dict[str, float] = field(default_factory=dict)
    mean_average_precision: float | None = None
    validation_cost: float | None = None


@dataclass
class Session:
    """One start of the trainer: its records from a STARTED line up to the next one."""

    #: Epochs completed before this start (the checkpoint it resumed from), when known.
    start_epoch: int | None = None
    records: list[dict] = field(default_factory=list)
    epochs: list[EpochEvent] = field(default_factory=list)
    validations: list[ValidationEvent] = field(default_factory=list)

    @property
    def last_record(self) -> dict | None:
        return self.records[-1] if self.records else None

    @property
    def last_status(self) -> str | None:
        return _text(self.records[-1].get("status")) if self.records else None

    @property
    def last_message(self) -> str | None:
        return _text(self.records[-1].get("message")) if self.records else None

    @property
    def last_epoch(self) -> EpochEvent | None:
        return self.epochs[-1] if self.epochs else None


def _float(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None  # NaN or infinity is no metric


def _int(value) -> int | None:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value) -> str | None:
    return value if isinstance(value, str) else None


def epoch_event(record: dict) -> EpochEvent | None:
    """The epoch line of the progress hook, or None for any other record."""
    epoch, max_epoch = _int(record.get("epoch")), _int(record.get("max_epoch"))
    if epoch is None or max_epoch is None:
        return None
    graphical = record.get("graphical") if isinstance(record.get("graphical"), dict) else {}
    return EpochEvent(epoch, max_epoch, _float(graphical.get("loss")), _float(graphical.get("learning_rate")),
                      _text(record.get("eta")))


def validation_metrics(record: dict, epoch: int | None = None) -> ValidationEvent | None:
    """The metrics of a validation (or of `evaluate`) from its record, or None for any other record.

    >>> validation_metrics({"message": "Evaluation metrics generated.",
    ...     "categorical": {"average_precision": {"car": 70.0}},
    ...     "kpi": {"validation cost": 0.0001, "mean average precision": 70.0}}, 3).mean_average_precision
    70.0
    """
    if record.get("message") != VALIDATION_MESSAGE:
        return None
    kpi = record.get("kpi") if isinstance(record.get("kpi"), dict) else {}
    categorical = record.get("categorical") if isinstance(record.get("categorical"), dict) else {}
    ap = categorical.get("average_precision") if isinstance(categorical.get("average_precision"), dict) else {}
    return ValidationEvent(
        epoch=epoch,
        average_precision={str(k): v for k, raw in ap.items() if (v := _float(raw)) is not None},
        mean_average_precision=_float(kpi.get("mean average precision")),
        validation_cost=_float(kpi.get("validation cost")),
    )


class StatusLog:
    """All of a status.json, session by session, read incrementally while the trainer writes it.

    `poll()` returns the events of lines that appeared after the log was opened (what a launch
    caused), while the sessions keep the whole file: a re-run of a finished folder trains
    nothing, and its result is the metrics of the session that did.
    """

    def __init__(self, path: Path | None, *, start_epoch: int | None = None) -> None:
        self.path = path
        self.sessions: list[Session] = []
        self._start_epoch = start_epoch
        self._offset = 0
        self._partial = b""
        self._pending: list[dict] = []
        self._launch_index: int | None = None
        self._read()  # the history: what earlier starts left
        #: Sessions from this index on were written after the log was opened (by this launch).
        self._launch_index = len(self.sessions)

    # --- reading -----------------------------------------------------------------------------

    def poll(self) -> list[EpochEvent | ValidationEvent]:
        """New events since the last poll (lines still being written wait for their newline)."""
        return self._read()

    def finish(self) -> list[EpochEvent | ValidationEvent]:
        """After the trainer ended: read the rest, an unterminated last line included."""
        events = self._read()
        tail, self._partial = self._partial, b""
        events += self._parse([tail])
        self._close_session()
        return events

    def _read(self) -> list[EpochEvent | ValidationEvent]:
        if self.path is None:
            return []
        chunk = read_untrusted(self.path, offset=self._offset, limit=MAX_STATUS_BYTES - self._offset)
        if chunk is None:
            return []
        if chunk.truncated:
            # Replaced or truncated (dataset_convert rewrites it): everything in it is new.
            self.sessions, self._offset, self._partial, self._pending, self._launch_index = [], 0, b"", [], 0
        self._offset += len(chunk.data)
        *complete, self._partial = (self._partial + chunk.data).split(b"\n")
        return self._parse(complete)

    def _parse(self, lines: list[bytes]) -> list[EpochEvent | ValidationEvent]:
        events: list[EpochEvent | ValidationEvent] = []
        for raw in lines:
            if not raw.strip():
                continue
            try:
                record = load_bounded(raw, MAX_STATUS_DEPTH)
            except ValueError:
                continue  # a torn, foreign or absurdly nested line must not stop the run's observation
            if isinstance(record, dict):
                events += self._add(record)
        return events

    def _add(self, record: dict) -> list[EpochEvent | ValidationEvent]:
        first_of_launch = self._launch_index is not None and len(self.sessions) == self._launch_index
        if record.get("status") == STARTED or first_of_launch or not self.sessions:
            self._close_session()
            self.sessions.append(Session(start_epoch=self._start_epoch if first_of_launch else None))
        session = self.sessions[-1]
        session.records.append(record)
        if (epoch := epoch_event(record)) is not None:
            session.epochs.append(epoch)
            resolved = [self._attribute(session, pending, epoch.epoch) for pending in self._pending]
            self._pending = []
            return [*resolved, epoch]
        if validation_metrics(record) is None:
            return []
        known = session.last_epoch.epoch if session.last_epoch else session.start_epoch
        if known is None:
            self._pending.append(record)  # an earlier start's first validation: its next epoch line says
            return []
        return [self._attribute(session, record, known + 1)]

    def _attribute(self, session: Session, record: dict, epoch: int | None) -> ValidationEvent:
        event = validation_metrics(record, epoch)
        assert event is not None
        session.validations.append(event)
        return event

    def _close_session(self) -> None:
        for record in self._pending:
            self._attribute(self.sessions[-1], record, None)
        self._pending = []

    # --- what a launch caused -----------------------------------------------------------------

    @property
    def launched(self) -> list[Session]:
        """The sessions this launch wrote (normally one)."""
        return self.sessions[self._launch_index or 0:]

    @property
    def current(self) -> Session:
        """The newest session of this launch; an empty one if the trainer wrote nothing."""
        launched = self.launched
        return launched[-1] if launched else Session(start_epoch=self._start_epoch)

    @property
    def validations(self) -> list[ValidationEvent]:
        """Every validation in the file, oldest first."""
        return [v for s in self.sessions for v in s.validations]

    # The current session's view, as the judge and the observers use it.
    @property
    def records(self) -> list[dict]:
        return [r for s in self.launched for r in s.records]

    @property
    def epochs(self) -> list[EpochEvent]:
        return [e for s in self.launched for e in s.epochs]

    @property
    def last_status(self) -> str | None:
        return self.current.last_status

    @property
    def last_message(self) -> str | None:
        return self.current.last_message

    @property
    def last_epoch(self) -> EpochEvent | None:
        epochs = self.epochs
        return epochs[-1] if epochs else None
