"""What a training job returns and how it is summarised for people (the run's markdown artifact)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from tasks.job.promotion_policy import PromotionOutcome, promotion_markdown
from tasks.job.workspace import StagedInput


class JobResult(BaseModel):
    """The typed result of `train_detectnet_v2`."""

    status: Literal["trained", "planned", "failed"] = Field(
        description="trained: a model was published; planned: stopped before launch (dry run); failed"
    )
    run_id: str
    results_location: str = Field(description="Where the results are (or would be) published")
    model_location: str | None = Field(default=None, description="The published final model file")
    final_map: float | None = Field(default=None, description="Mean average precision of the last validation (%)")
    per_class_ap: dict[str, float] = Field(default_factory=dict, description="AP per class of the last validation (%)")
    promotion: PromotionOutcome | None = Field(
        default=None, description="Promoted or not, the champion before and after, the reasons per class"
    )
    epochs_run: int = Field(default=0, description="Epochs the published model was trained for")
    converted_tfrecords: bool = False
    timings: dict[str, float] = Field(default_factory=dict, description="Seconds per step")
    launch_plan: str = Field(default="", description="The container launch, key redacted")
    note: str | None = None
    notes: list[str] = Field(default_factory=list, description="Findings that did not stop the run")
    spec_diff: str = Field(default="", description="The spec rewrite as a unified diff (paths and num_epochs)")
    would_stop: list[dict] = Field(
        default_factory=list,
        description="A dry run's findings that would stop training (code, message, file, hint), e.g. base-model-missing",
    )


def render_summary(
    *,
    result: JobResult,
    staged: dict[str, StagedInput],
    validation_summary: str,
) -> str:
    """The run's markdown summary: inputs resolved, spec diff, container command, outcome."""
    lines = [f"# DetectNet_v2 training: {result.status}", ""]
    if result.note:
        lines += [f"> {result.note}", ""]
    lines += ["## Inputs", "", "| input | location | local path | content | transferred |", "|---|---|---|---|---|"]
    for name, item in sorted(staged.items()):
        moved = f"{item.bytes_transferred / 1e6:.1f} MB" if item.remote else "in place"
        lines.append(f"| {name} | `{item.location}` | `{item.path}` | `{item.fingerprint[:12]}` | {moved} |")
    lines += ["", "## Spec rewrite", "", "```diff", result.spec_diff.rstrip() or "(no change)", "```", ""]
    lines += ["## Dataset", "", validation_summary, ""]
    lines += ["## Container launch", "", "```", result.launch_plan.rstrip(), "```", ""]
    lines += ["## Outcome", "", f"- status: **{result.status}**", f"- results: `{result.results_location}`"]
    if result.model_location:
        lines.append(f"- model: `{result.model_location}`")
    if result.final_map is not None:
        lines.append(f"- final mAP: {result.final_map:.2f} %")
    if result.epochs_run:
        lines.append(f"- epochs trained: {result.epochs_run}")
    if result.converted_tfrecords:
        lines.append("- TFRecords were (re)made with dataset_convert and published beside the data")
    if result.timings:
        lines.append("- timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in result.timings.items()))
    for note in result.notes:
        lines.append(f"- {note}")
    for finding in result.would_stop:
        lines.append(f"- training would stop: {finding['code']}: {finding['message']}")
    if result.per_class_ap:
        lines += ["", "## Final average precision per class", "", "| class | AP (%) |", "|---|---|"]
        lines += [f"| {name} | {ap:.2f} |" for name, ap in sorted(result.per_class_ap.items())]
    if result.promotion is not None:
        lines += ["", "#" + promotion_markdown(result.promotion).rstrip().replace("\n## ", "\n### ")]
    return "\n".join(lines) + "\n"
