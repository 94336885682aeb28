"""A flow that publishes the report the way the training flow wires it (run as a subprocess
against a real Prefect server by the browser test; also the wiring example for flows/train.py).

    python -m tests.report.report_flow DATA_DIR STATUS_JSON WORK_DIR

The results location comes from env TAOFLOW_REPORT_RESULTS (a SAS URL in the tests): like the
training flow, a credential never becomes a flow parameter. Prints {"flow_run_id": ...}.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

from prefect import flow
from prefect.runtime import flow_run

from tasks.report import Comparison, RunReport, contact_sheet, dataset_summary, save_report, training_history
from tasks.report.artifacts import publish_report_artifacts
from tasks.storage import parse_location, sync_up

MAPPING = {"rectangle": "rectangle", "square": "rectangle", "ellipse": "ellipse"}
CHAMPION = {"rectangle": 72.0, "ellipse": 50.0}
CHALLENGER = {"rectangle": 70.0, "ellipse": 60.0}


@flow(name="report-pictures")
def report_pictures(data_dir: str, status_json: str, work_dir: str) -> str:
    results_location = os.environ["TAOFLOW_REPORT_RESULTS"]
    report = RunReport(title="demo / resnet18_detector", run_id=str(flow_run.id),
                       results_location=parse_location(results_location).display)
    # After validation: the dataset is known, training may still fail.
    report.dataset = dataset_summary(Path(data_dir), MAPPING, shown_as="demo dataset")
    report.samples = contact_sheet(Path(data_dir), classes=list(MAPPING))
    publish_report_artifacts(report, sections=("report-dataset", "report-samples"))
    # After training and the held-out evaluation of both models.
    report.training = training_history(Path(status_json))
    report.comparison = Comparison(challenger=CHALLENGER, champion=CHAMPION, outcome="Not promoted",
                                   reasons=["rectangle: AP dropped 2.0 points, more than the 1.0 allowed"])
    publish_report_artifacts(report, sections=("report-training", "report-comparison"))
    results = Path(work_dir) / "results"
    results.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(status_json, results / "status.json")
    save_report(report, results)  # report.json + report.html, published with the model
    sync_up(results, results_location)
    return str(flow_run.id)


if __name__ == "__main__":
    run_id = report_pictures(*sys.argv[1:4])
    print(json.dumps({"flow_run_id": run_id}))
