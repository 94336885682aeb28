"""The chain after training in the report: each step's held-out mAP and model size, which model ships.

Drawn from the model card's chain record (`tasks.registry.chain_record.ChainRecord`). The report is a
unit below the registry, so it reads the record through the attributes it needs (`ChainFacts`), and
a step's size is that of the file the step exists to make: the `.hdf5` of train, prune and retrain,
export's `.onnx`, the TensorRT engine.
"""

from __future__ import annotations

from typing import Protocol, Sequence

from tasks.report.charts import PALETTE, Column, bar_columns
from tasks.report.contents import ChainStep, ChainSummary
from tasks.report.picture import Picture

#: The steps in the order they run.
STEP_ORDER = ("train", "prune", "retrain", "export", "engine")
#: The kinds of file that are a step's model, the first preferred (the others: labels, the DeepStream
#: config, the calibration cache).
MODEL_KINDS = ("model", "onnx", "engine")


class OfStep(Protocol):
    @property
    def step(self) -> str: ...


class StepFacts(OfStep, Protocol):
    @property
    def mean_average_precision(self) -> float | None: ...
    @property
    def pruning_ratio(self) -> float | None: ...


class FileFacts(OfStep, Protocol):
    @property
    def kind(self) -> str: ...
    @property
    def size_mb(self) -> float: ...
    @property
    def param_count(self) -> float | None: ...


class ChainFacts(Protocol):
    """What the report reads of a chain record (the card's `ChainRecord` has it all)."""

    @property
    def shipped(self) -> str: ...
    @property
    def decision(self) -> str: ...
    @property
    def compared_on(self) -> str: ...
    @property
    def steps(self) -> Sequence[StepFacts]: ...
    @property
    def artifacts(self) -> Sequence[FileFacts]: ...


def chain_summary(record: ChainFacts) -> ChainSummary:
    """The report's view of a chain record: one row per step that ran, in the chain's order.

    >>> from types import SimpleNamespace as Facts
    >>> record = Facts(shipped="pruned", decision="pruning cost 0.5 points", compared_on="the retrained model",
    ...     steps=[Facts(step="train", mean_average_precision=80.0, pruning_ratio=None),
    ...            Facts(step="prune", mean_average_precision=None, pruning_ratio=0.25)],
    ...     artifacts=[Facts(step="prune", kind="model", size_mb=21.5, param_count=2.8)])
    >>> [(s.step, s.mean_average_precision, s.size_mb, s.param_count, s.pruning_ratio)
    ...  for s in chain_summary(record).steps]
    [('train', 80.0, None, None, None), ('prune', None, 21.5, 2.8, 0.25)]
    """
    metrics = {m.step: m for m in record.steps}
    made = {a.step for a in record.artifacts}
    steps = []
    for name in [s for s in STEP_ORDER if s in metrics or s in made]:
        measured, model = metrics.get(name), _model_file(name, record.artifacts)
        steps.append(ChainStep(step=name, mean_average_precision=measured.mean_average_precision if measured else None,
                               pruning_ratio=measured.pruning_ratio if measured else None,
                               size_mb=model.size_mb if model else None,
                               param_count=model.param_count if model else None))
    return ChainSummary(shipped=record.shipped, decision=record.decision, compared_on=record.compared_on,
                        steps=steps)


def _model_file(step: str, artifacts: Sequence[FileFacts]) -> FileFacts | None:
    """The model `step` made (export's ONNX rather than an engine it may also have built)."""
    files = [a for a in artifacts if a.step == step and a.kind in MODEL_KINDS]
    return min(files, key=lambda a: MODEL_KINDS.index(a.kind), default=None)


def step_label(summary: ChainSummary, step: ChainStep) -> str:
    """A step's name, marked when its model is the one that ships.

    >>> summary = ChainSummary(shipped="pruned", decision="", steps=[ChainStep(step="retrain")])
    >>> step_label(summary, summary.steps[0])
    'retrain (ships)'
    """
    return f"{step.step} (ships)" if step.step == summary.shipping_step else step.step


def chain_chart(summary: ChainSummary) -> Picture:
    """Held-out mAP and model size per step, side by side (parameters too when a step knows them).

    >>> chain_chart(ChainSummary(shipped="unpruned", decision="", steps=[ChainStep(step="train", size_mb=85.0)])).alt
    'mAP and model size per step: train (ships) size 85.0 MB; the unpruned model ships'
    """
    steps = summary.steps
    columns = [Column("held-out mAP %", [s.mean_average_precision for s in steps], PALETTE[0], x_max=100.0),
               Column("model size (MB)", [s.size_mb for s in steps], PALETTE[1])]
    if any(s.param_count is not None for s in steps):
        columns.append(Column("parameters (millions)", [s.param_count for s in steps], PALETTE[2]))
    described = []
    for step in steps:
        parts = [step_label(summary, step)]
        if step.mean_average_precision is not None:
            parts.append(f"mAP {step.mean_average_precision:.1f} %")
        if step.size_mb is not None:
            parts.append(f"size {step.size_mb:.1f} MB")
        described.append(" ".join(parts))
    alt = f"mAP and model size per step: {', '.join(described)}; the {summary.shipped} model ships"
    return bar_columns("The chain: held-out mAP and model size per step", [step_label(summary, s) for s in steps],
                       columns, alt=alt)
