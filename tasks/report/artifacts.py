"""The Prefect edge of the report: one markdown artifact per section, pictures inline.

Both UIs of Prefect 3.9 render a markdown image whose source is a `data:image/...` URI: the
React UI (the default) allows exactly that in its URL filter and sanitizer (`lazy-markdown`:
`/^data:image\\//` for `img src`, `data` added to the sanitizer's `src` protocols), the Vue UI
renders markdown images as `<img src>` as written. So the pictures show for local and blob
outputs alike and no URL to storage, let alone a SAS token, is ever put into an artifact.
`tests/report/test_browser.py` proves it in Chromium on a real server.
"""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from tasks.report.chain_view import ChainFacts, chain_summary
from tasks.report.contact import contact_sheet
from tasks.report.contents import Comparison, RunReport
from tasks.report.curves import training_history
from tasks.report.dataset_view import dataset_summary
from tasks.report.page import Section, report_sections
from tasks.report.results_folder import save_report

#: Artifact keys, one per section (lower case, digits and dashes, as Prefect requires).
SECTION_KEYS = ("report-comparison", "report-chain", "report-training", "report-dataset", "report-samples")


def publish_report_artifacts(report: RunReport, sections: tuple[str, ...] = SECTION_KEYS) -> dict[str, UUID]:
    """Publish the report's sections that have data (and are in `sections`) as markdown artifacts.

    Call it as soon as a part is known (the dataset after validation, the rest after training):
    keyed artifacts keep a version per call, the UI shows the newest.

    Example, in a flow::

        publish_report_artifacts(RunReport(title="parking", dataset=dataset_summary(data, mapping)))
    """
    published: dict[str, UUID] = {}
    for section in report_sections(report):
        if section.key in sections:
            published[section.key] = _publish(section)
    return published


def _publish(section: Section) -> UUID:
    return create_markdown_artifact(section.markdown(), key=section.key, description=section.summary)


#: Pictures are drawn from what the run has; nothing to retry, nothing to cache.
_REPORT_TASK = dict(cache_policy=NO_CACHE, persist_result=False, retries=0)


@task(name="report-dataset", **_REPORT_TASK)
def report_dataset(report: RunReport, data_dir: Path, class_mapping: dict[str, str], shown_as: str) -> RunReport:
    """After validation, whether or not training then succeeds: the dataset and sample frames."""
    report.dataset = dataset_summary(data_dir, class_mapping, shown_as=shown_as)
    report.samples = contact_sheet(data_dir, classes=list(class_mapping))
    publish_report_artifacts(report, sections=("report-dataset", "report-samples"))
    return report


@task(name="report-results", **_REPORT_TASK)
def report_results(report: RunReport, results_dir: Path, comparison: Comparison | None,
                   chain: ChainFacts | None = None) -> RunReport:
    """After training and the held-out evaluation: the curves, champion vs challenger and the chain
    (the card's `ChainRecord`, when one ran), as artifacts and in report.json / report.html in the
    results folder (published with the model)."""
    report.training = training_history(results_dir / "status.json")
    report.comparison = comparison
    report.chain = chain_summary(chain) if chain is not None else None
    publish_report_artifacts(report, sections=("report-training", "report-comparison", "report-chain"))
    save_report(report, results_dir)
    return report
