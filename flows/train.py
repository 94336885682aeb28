"""`train_detectnet_v2`: from data in Azure (or on disk) to a published DetectNet_v2 model.

Only composition lives here: the body reads as the pipeline, one call per step (`flows/steps.py`),
each over plain functions in `tasks/` and their thin tasks. Order: validate blob training data where it
lies (a bad dataset fails before any of it is downloaded) -> stage inputs (parallel, content-cached) ->
rewrite + check the spec -> validate the dataset (fail here, on a CPU, before any container exists) ->
dataset_convert when the TFRecords are missing or stale -> train (a retry resumes from the last
checkpoint; the same inputs reuse a completed training) -> the chain the request asks for (prune, retrain,
export, engine: flows/chain_steps.py) -> evaluate the model that ships and the champion on the same
held-out data -> publish atomically, with the model card -> promote (swap the champion pointer, or say per class why not). A run ends
`Completed` with the state name "Promoted" or "Not promoted" (automations can act on it, docs/deploy.md);
a run killed before the promotion leaves the old champion in place.
"""

from typing import Any

from prefect import flow
from prefect.runtime import flow_run as current_run
from prefect.states import Completed

from flows.chain_steps import chain
from flows.job_run import JobRun
from flows.steps import (
    check,
    check_in_place,
    convert,
    draw_dataset,
    evaluate,
    plan_launch,
    planned,
    promote,
    publish,
    stage,
    train,
)
from tasks.job.outcome import JobResult
from tasks.job.request import TrainRequest
from tasks.launch.launch_tasks import reap_run_containers


def _reap(flow, flow_run, state) -> None:
    """on_cancellation/on_crashed: the container belongs to dockerd, not to the flow process."""
    reap_run_containers(str(flow_run.id))


@flow(
    name="train-detectnet-v2",
    description="Retrain a TAO DetectNet_v2 detector: stage, rewrite, validate, (convert), train, evaluate against "
    "the champion, publish, promote.",
    on_cancellation=[_reap],
    on_crashed=[_reap],
)
def train_detectnet_v2(request: TrainRequest, dry_run: bool = False, strict: bool = False) -> JobResult:
    """Train, evaluate against the champion, publish and promote a DetectNet_v2 model; with dry_run,
    stop after validation with the launch plan. Calling it returns the `JobResult`; its final state
    is named "Promoted" or "Not promoted".

    Args:
        request: the job: inputs with the spec paths they replace, epochs, output, TAO options.
        dry_run: stop before any container starts and return the launch plan.
        strict: treat dataset warnings (e.g. classes the spec does not map) as errors.
    """
    job = JobRun.start(request, current_run.id, current_run.scheduled_start_time)
    try:
        check_in_place(job, strict=strict)
        stage(job)
        checked = check(job, strict=strict, dry_run=dry_run)
        pictures = draw_dataset(job, checked)
        plan_launch(job, checked)
        if dry_run:
            return planned(job, checked)
        convert(job, checked)
        trained = train(job, checked)
        shipped = chain(job, checked, trained)
        judged = evaluate(job, checked, shipped)
        card = publish(job, checked, trained, shipped, judged, pictures)
        return promote(job, card, judged)
    except BaseException as exc:
        job.failed(exc)
        raise
    finally:
        job.write_summary()


@flow(name="train-detectnet-v2-from-component-inputs")
def train_from_component_inputs(inputs: dict[str, Any], dry_run: bool = False) -> JobResult:
    """Migration path: the AzureML component's flat inputs, by their names, unchanged."""
    state = train_detectnet_v2(TrainRequest.from_component_inputs(inputs), dry_run=dry_run, return_state=True)
    # Keep the inner run's "Promoted" / "Not promoted" on this run too.
    return Completed(name=state.name, message=state.message, data=state.result())
