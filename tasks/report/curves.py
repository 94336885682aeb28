"""Training curves from TAO's status.json, and the champion/challenger chart.

The curves read every session of the file (a resumed run writes a second session that repeats
the epochs it redoes: the newest value of an epoch wins). Loss is plotted at the epoch line's
number, which equals the epochs completed when TAO wrote it in both readings of TAO's epoch
counter, and a validation at the epoch it validated (`tasks/launch/status.py`), so the two share
one x axis.
"""

from __future__ import annotations

from pathlib import Path

from tasks.launch.status import StatusLog
from tasks.report.charts import GREY, PALETTE, Line, Panel, Series, bar_chart, line_chart
from tasks.report.contents import Comparison, EpochPoint, TrainingHistory, ValidationPoint
from tasks.report.picture import Picture

#: Per-class AP lines drawn beside the mAP; more classes than this are left to the table.
MAX_CLASS_LINES = 6


def training_history(status: StatusLog | Path) -> TrainingHistory:
    """Loss and validations per epoch from a status.json (a path or an opened `StatusLog`).

    >>> training_history(Path("/nonexistent/status.json")).epochs
    []
    """
    log = status if isinstance(status, StatusLog) else StatusLog(status)
    epochs: dict[int, EpochPoint] = {}
    validations: dict[int, ValidationPoint] = {}
    num_epochs = None
    for session in log.sessions:
        for event in session.epochs:
            epochs[event.epoch] = EpochPoint(epoch=event.epoch, loss=event.loss, learning_rate=event.learning_rate)
            num_epochs = event.max_epoch or num_epochs
        for validation in session.validations:
            if validation.epoch is not None:  # a validation whose epoch nobody can tell is not plotted
                validations[validation.epoch] = ValidationPoint(
                    epoch=validation.epoch, mean_ap=validation.mean_average_precision,
                    average_precision=dict(validation.average_precision))
    return TrainingHistory(num_epochs=num_epochs, epochs=[epochs[e] for e in sorted(epochs)],
                           validations=[validations[e] for e in sorted(validations)])


def training_curves(status: TrainingHistory | StatusLog | Path) -> Picture:
    """Loss per epoch (top) and validation mAP with AP per class per epoch (bottom), as one picture.

    >>> training_curves(TrainingHistory()).mime
    'image/svg+xml'
    """
    history = status if isinstance(status, TrainingHistory) else training_history(status)
    loss = [(p.epoch, p.loss) for p in history.epochs if p.loss is not None]
    loss_panel = Panel("training loss", [Line("loss", loss, PALETTE[0])] if loss else [], y_min=0.0)
    classes = sorted({c for v in history.validations for c in v.average_precision})
    lines = [Line("mAP", [(v.epoch, v.mean_ap) for v in history.validations if v.mean_ap is not None],
                  "#222222", 3.0)]
    for i, name in enumerate(classes[:MAX_CLASS_LINES]):
        points = [(v.epoch, v.average_precision[name]) for v in history.validations if name in v.average_precision]
        lines.append(Line(name, points, PALETTE[(i + 1) % len(PALETTE)], 1.5))
    map_panel = Panel("validation AP (%)", [line for line in lines if line.points], y_min=0.0, y_max=100.0)
    done = max((p.epoch for p in history.epochs), default=0)
    of = f" of {history.num_epochs}" if history.num_epochs else ""
    last = next((v.mean_ap for v in reversed(history.validations) if v.mean_ap is not None), None)
    alt = f"training curves: {len(history.epochs)} epoch lines up to epoch {done}{of}" + (
        f", last validation mAP {last:.1f} %" if last is not None else ", no validation recorded")
    return line_chart("Training", [loss_panel, map_panel], x_label="epochs completed",
                      x_range=(0, history.num_epochs or done or 1), alt=alt)


def mean_ap(ap: dict[str, float]) -> float | None:
    """TAO's mAP: the mean of the per-class APs.

    >>> mean_ap({"car": 70.0, "pedestrian": 60.0})
    65.0
    """
    return sum(ap.values()) / len(ap) if ap else None


def comparison_chart(challenger: dict[str, float], champion: dict[str, float] | None = None, *,
                     challenger_map: float | None = None, champion_map: float | None = None) -> Picture:
    """AP per class (and mAP) of the new model beside the champion's, on the same held-out data.

    >>> comparison_chart({"car": 70.0}, None).alt
    'AP per class: new model mAP 70.0 %, no champion yet'
    """
    names = sorted(set(challenger) | set(champion or {}))
    new_map = challenger_map if challenger_map is not None else mean_ap(challenger)
    old_map = champion_map if champion_map is not None else mean_ap(champion or {})
    series = []
    if champion is not None:
        series.append(Series("champion", [champion.get(n) for n in names] + [old_map], GREY))
    series.append(Series("new model", [challenger.get(n) for n in names] + [new_map], PALETTE[0]))
    alt = "AP per class: new model mAP " + (f"{new_map:.1f} %" if new_map is not None else "unknown")
    alt += f", champion {old_map:.1f} %" if champion is not None and old_map is not None else ", no champion yet"
    return bar_chart("Champion vs new model (held-out AP %)", names + ["mAP"], series, unit="AP %",
                     x_max=100.0, alt=alt)


def comparison_picture(comparison: Comparison) -> Picture:
    """`comparison_chart` of a stored `Comparison`."""
    return comparison_chart(comparison.challenger, comparison.champion, challenger_map=comparison.challenger_map,
                            champion_map=comparison.champion_map)
