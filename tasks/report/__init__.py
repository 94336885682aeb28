"""Pictures of a run, for people who look rather than read: the dataset, sample frames with
their boxes, the training curves, the champion/challenger comparison and the chain after training
(mAP and model size per step).

Plain functions on plain data (no Prefect here; the artifacts are in `tasks.report.artifacts`).
Charts are SVG drawn by hand, the contact sheet a JPEG drawn with Pillow; every picture travels
inline as a `data:` URI, in the Prefect UI and in the one-file HTML report alike.

>>> report = RunReport(title="parking", comparison=Comparison(challenger={"car": 70.0}))
>>> "data:image/svg+xml;base64," in render_html_report(report)
True
"""

from tasks.report.chain_view import chain_chart, chain_summary
from tasks.report.contact import contact_sheet
from tasks.report.contents import ChainStep, ChainSummary, Comparison, DatasetSummary, RunReport, TrainingHistory
from tasks.report.curves import comparison_chart, training_curves, training_history
from tasks.report.dataset_view import dataset_pictures, dataset_summary
from tasks.report.page import render_html_report
from tasks.report.picture import Picture
from tasks.report.results_folder import (
    REPORT_DATA,
    REPORT_HTML,
    ReportError,
    load_report,
    render_report_file,
    save_report,
)

__all__ = [
    "ChainStep",
    "ChainSummary",
    "Comparison",
    "DatasetSummary",
    "Picture",
    "REPORT_DATA",
    "REPORT_HTML",
    "ReportError",
    "RunReport",
    "TrainingHistory",
    "chain_chart",
    "chain_summary",
    "comparison_chart",
    "contact_sheet",
    "dataset_pictures",
    "dataset_summary",
    "load_report",
    "render_html_report",
    "render_report_file",
    "save_report",
    "training_curves",
    "training_history",
]
