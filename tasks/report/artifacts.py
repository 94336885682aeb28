"""The Prefect edge of the report: one markdown artifact per section, pictures inline.

Both UIs of Prefect 3.9 render a markdown image whose source is a `data:image/...` URI: the
React UI (the default) allows exactly that in its URL filter and sanitizer (`lazy-markdown`:
`/^data:image\\//` for `img src`, `data` added to the sanitizer's `src` protocols), the Vue UI
renders markdown images as `<img src>` as written. So the pictures show for local and blob
outputs alike and no URL to storage, let alone a SAS token, is ever put into an artifact.
`tests/report/test_browser.py` proves it in Chromium on a real server.
"""

from __future__ import annotations

from uuid import UUID

from prefect.artifacts import create_markdown_artifact

from tasks.report.contents import RunReport
from tasks.report.page import Section, report_sections

#: Artifact keys, one per section (lower case, digits and dashes, as Prefect requires).
SECTION_KEYS = ("report-comparison", "report-training", "report-dataset", "report-samples")


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
