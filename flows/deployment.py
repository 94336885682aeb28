"""`retrain_detectnet_v2`: the deployments' entry to `train_detectnet_v2` (prefect.yaml points here).

Prefect stores a deployment run's parameters and shows them in the UI, so a run started from a
deployment must never carry the TAO key or a SAS token. The request's JSON schema (which the
server enforces with `enforce_parameter_schema: true`) already refuses both before the run
exists; this flow is the second net for a run created around that check: it fails at once with
the advice, and its failure hook masks the stored copy. The key comes from `key_block` (a
Prefect Secret block) or env TAO_KEY on the worker. Underneath, the same composition runs as
in-process: the body of `train_detectnet_v2`, in this run.
"""

from prefect import flow

from flows.train import train_detectnet_v2
from tasks.job.config import with_env_key
from tasks.job.outcome import JobResult
from tasks.job.request import TrainRequest
from tasks.job.stored_parameters import refuse_stored_secrets, scrub_stored_parameters
from tasks.log_filters import install_log_filters

# Before Prefect validates a run's parameters: it logs them raw when they fail.
install_log_filters()


def _mask_stored_parameters(flow, flow_run, state) -> None:
    """on_failure: a run refused for a secret (or an unknown parameter) keeps no copy of it in Prefect."""
    scrub_stored_parameters(flow_run.id, flow_run.parameters or {}, flow.parameters.properties)


@flow(
    # The same flow for Prefect: deployments stay train-detectnet-v2/<name>, runs sit together in the UI.
    name=train_detectnet_v2.name,
    description=train_detectnet_v2.description,
    on_cancellation=list(train_detectnet_v2.on_cancellation_hooks),
    # A top-level parameter the flow does not have ends the run Crashed (binding fails before the
    # flow starts); a refused request ends it Failed: either way the stored copy is masked.
    on_crashed=[*train_detectnet_v2.on_crashed_hooks, _mask_stored_parameters],
    on_failure=[*train_detectnet_v2.on_failure_hooks, _mask_stored_parameters],
)
def retrain_detectnet_v2(request: TrainRequest, dry_run: bool = False, strict: bool = False) -> JobResult:
    """Train and publish a DetectNet_v2 model from a deployment run; the key comes from key_block or env TAO_KEY.

    Args:
        request: the job: inputs with the spec paths they replace, epochs, output, TAO options.
        dry_run: stop before any container starts and return the launch plan.
        strict: treat dataset warnings (e.g. classes the spec does not map) as errors.
    """
    install_log_filters()
    refuse_stored_secrets(request)
    # `.fn`: the training composition runs in this flow run (its containers carry this run's id,
    # which the cancellation hooks above reap), with the key only in memory.
    return train_detectnet_v2.fn(with_env_key(request), dry_run=dry_run, strict=strict)
