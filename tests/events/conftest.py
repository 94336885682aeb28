"""Fixtures of the event tests: the Prefect API URL and a reader of the events it recorded."""

from __future__ import annotations

import time

import httpx
import pytest


@pytest.fixture(scope="session")
def prefect_api_url(prefect_api) -> str:
    """The harness server's URL (it lives in Prefect's settings, not always in the environment)."""
    from prefect.settings import PREFECT_API_URL

    return prefect_api or PREFECT_API_URL.value()


def recorded_events(api_url: str, resource_prefix: str, *, expect: int, settle: float = 3.0, timeout: float = 30.0) -> list[dict]:
    """`taoflow.dataset.ready` events the server stored for resources under the prefix.

    Waits until `expect` are there (the server persists in batches), then `settle` seconds
    more, so a surplus event would be seen rather than missed.
    """
    body = {
        "filter": {
            "event": {"name": ["taoflow.dataset.ready"]},
            "resource": {"id_prefix": [resource_prefix]},
            "occurred": {"since": "2000-01-01T00:00:00Z"},
        },
        "limit": 50,
    }
    deadline = time.monotonic() + timeout
    found: list[dict] = []
    while time.monotonic() < deadline:
        response = httpx.post(f"{api_url.rstrip('/')}/events/filter", json=body, timeout=10)
        response.raise_for_status()
        found = response.json()["events"]
        if len(found) >= expect:
            break
        time.sleep(0.5)
    time.sleep(settle)
    response = httpx.post(f"{api_url.rstrip('/')}/events/filter", json=body, timeout=10)
    return response.json()["events"]
