"""What a deployment run's stored parameters may hold, and the copy Prefect keeps made safe after the fact.

The deployments' schema makes the Prefect server refuse a `key` or a SAS before a run exists;
`refuse_stored_secrets` repeats that check as the deployment flow's first step. Two roads get
around the server's check: an API call that turns `enforce_parameter_schema` off for
one run, and a top-level parameter the flow does not have (Prefect's schema of a flow's
signature does not forbid extra names, so the server stores them; the flow then fails to bind
them). For those, the deployment flow's failure hook rewrites the stored parameters with
`sanitized_parameters`: unknown top-level names and every `key` entry masked, every string
scrubbed of credential shapes.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping
from uuid import UUID

from tasks.errors import ConfigError, Problem
from tasks.job.request import EXAMPLE, TrainRequest  # noqa: F401 - EXAMPLE: the doctest
from tasks.job.request_fields import KEY_ADVICE, SAS_ADVICE, has_url_query
from tasks.redact import MASK, scrub

#: Mapping entries whose value is a credential wherever they appear in parameters.
SECRET_NAMES = frozenset({"key", "tao_key", "sas", "sas_token", "connection_string", "account_key"})


def refuse_stored_secrets(request: TrainRequest) -> None:
    """Refuse a request whose parameters Prefect stored (a deployment run) if it holds a secret.

    The deployments' schema already makes the Prefect server refuse a `key` or a URL with a
    query before the run exists; this catches a run created around that check (an API call with
    `enforce_parameter_schema: false`) at its very first step, with the same advice.

    >>> refuse_stored_secrets(TrainRequest.model_validate(EXAMPLE))  # nothing to refuse
    """
    problems = []
    if request.key is not None:
        problems.append(Problem("key-in-parameters", "key: a plain TAO key", hint=KEY_ADVICE))
    for name, value in request.locations().items():
        if has_url_query(value):
            problems.append(Problem("sas-in-parameters", f"{name}: a URL with a query string (a SAS token) or fragment",
                                    hint=SAS_ADVICE))
    if problems:
        raise ConfigError(
            "this deployment run's parameters carry a secret, and Prefect stores and shows a run's parameters",
            where="request",
            problems=problems,
            fix="start the run again without it, as the hints say (the stored copy of these parameters was masked)",
        )


def sanitized_parameters(parameters: Mapping[str, Any], known: Iterable[str]) -> dict[str, Any]:
    """`parameters` as they may be stored: names not in `known` and secret entries masked.

    >>> sanitized_parameters({"request": {"key": "k", "spec": "https://a/c?sig=x"}, "key": "k"}, ["request"])
    {'request': {'key': '***', 'spec': 'https://a/c?sig=***'}, 'key': '***'}
    """
    known = set(known)
    return {name: _clean(value) if name in known else MASK for name, value in parameters.items()}


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, Mapping):
        return {k: MASK if str(k).lower() in SECRET_NAMES and v is not None else _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def scrub_stored_parameters(flow_run_id: UUID, parameters: Mapping[str, Any], known: Iterable[str]) -> bool:
    """Rewrite a flow run's stored parameters if they hold a secret; True when they were rewritten.

    >>> scrub_stored_parameters(UUID(int=0), {"dry_run": False}, ["dry_run"])  # nothing to do, no API call
    False
    """
    clean = sanitized_parameters(parameters, known)
    if clean == dict(parameters):
        return False
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        client.update_flow_run(flow_run_id, parameters=clean)
    return True
