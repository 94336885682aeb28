"""`JobRun`: one run of the training flow — its request, id, folders, storage access, launcher, the
result it builds step by step — and how a GPU step runs: in its content-addressed step folder, once
for all runs with the same inputs (tasks.job.step_cache), reused without a container when done.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Callable, Mapping, TypeVar

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact

from tasks.errors import TaoflowError
from tasks.job.outcome import JobResult, render_summary
from tasks.job.preflight import Preflight
from tasks.job.request import TrainRequest
from tasks.job.step_cache import StepFolder, run_step, step_key
from tasks.job.workspace import StagedInput, Workspace
from tasks.launch import Launcher, LaunchPlan
from tasks.launch.launch_tasks import launcher_for
from tasks.registry import app_location, held_out, version_for_run
from tasks.registry.registry_tasks import Contest
from tasks.storage import StorageAccess, parse_location

Result = TypeVar("Result")


@dataclass
class JobRun:
    """One run of the training flow: its request, id, folders, storage access and launcher, and the
    result it builds up step by step."""

    request: TrainRequest
    run_id: str
    workspace: Workspace
    access: StorageAccess
    result: JobResult
    staged: dict[str, StagedInput] = field(default_factory=dict)
    validation_summary: str = "not validated"
    key: str | None = None
    #: Steps whose completed results were reused instead of run (by another run, or an earlier attempt).
    reused: list[str] = field(default_factory=list)
    _clock: float = field(default_factory=time.perf_counter)

    @classmethod
    def start(cls, request: TrainRequest, run_id: object, scheduled: datetime | None) -> "JobRun":
        """A scheduled run publishes into its own version folder (`subfolder_per_run`)."""
        run_id = str(run_id or uuid.uuid4())
        request = version_for_run(request, scheduled, run_id)
        result = JobResult(status="failed", run_id=run_id, results_location=display(request.results_location))
        return cls(request, run_id, Workspace.default(), StorageAccess(credentials=request.storage_credentials), result)

    @property
    def run_dir(self) -> Path:
        return self.workspace.run_dir(self.run_id)

    @property
    def app(self) -> str:
        """OUTPUT/MODEL_APP_NAME: the registry of this application's models."""
        return app_location(self.request.output, self.request.model_app_name)

    @cached_property
    def launcher(self) -> Launcher:
        """The launcher of every container of this run; its GPU jobs book this host's GPUs first."""
        return launcher_for(self.request.launcher)

    def fingerprints(self, names) -> dict[str, str]:
        """Content hashes of staged inputs, by name: what a step's result depends on."""
        return {name: self.staged[name].fingerprint for name in names if name in self.staged}

    def cached(self, step: str, kind: type[Result], build: Callable[[Path], LaunchPlan],
               run: Callable[[LaunchPlan], Result], *, texts: Mapping[str, str], inputs: Mapping[str, str]) -> Result:
        """Run a GPU step in its step folder, or reuse what a run with the same inputs completed there.

        `build(folder)` plans the step into a folder; the key is drawn from a plan into this run's own
        folder (paths inside the container do not depend on it), the step then runs in the shared one.
        """
        draft = build(self.run_dir / "drafts" / step)
        key = step_key(step, image=draft.image, argv=draft.command.display_argv(), env=draft.env, texts=texts,
                       inputs=inputs)
        folder = StepFolder.under(self.workspace.root, step, key)
        plan = build(folder.root)
        result, reused = run_step(folder, kind, lambda: run(plan), notice=get_run_logger().info)
        if reused:
            self.reused.append(step)
            get_run_logger().info("%s: reused the completed step in %s (same inputs; no container started)", step,
                                  folder.root)
        return result

    def contest(self, checked: Preflight) -> Contest:
        """What comparing a model with the champion on the held-out data needs (`evaluate`, the chain)."""
        facts = checked.evaluation.facts
        return Contest(app=self.app, request=self.request, eval_spec=checked.evaluation.text,
                       eval_source=checked.prepared.source,
                       held_out=held_out(self.request, self.staged, facts.has_validation_data_source,
                                         facts.validation_fold),
                       staged=self.staged, workspace=self.workspace, run_dir=self.run_dir, run_id=self.run_id,
                       launcher=self.launcher, access=self.access, key=self.key)

    def lap(self, step: str) -> None:
        now = time.perf_counter()
        self.result.timings[step] = round(now - self._clock, 2)
        self._clock = now

    def failed(self, exc: BaseException) -> None:
        self.result.note = f"failed: {exc.what if isinstance(exc, TaoflowError) else type(exc).__name__}"

    def write_summary(self) -> None:
        """The run's markdown summary, also when it failed."""
        create_markdown_artifact(
            render_summary(result=self.result, staged=self.staged, validation_summary=self.validation_summary),
            key="train-summary", description=f"DetectNet_v2 training {self.result.status}",
        )


def display(location: str) -> str:
    return parse_location(location).display
