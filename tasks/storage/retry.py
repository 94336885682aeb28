"""The Azure SDK's retry policy, bounded by time for connection faults.

The SDK's stock `ExponentialRetry` treats a refused connection like any other fault: with its
defaults a request to a dead endpoint takes ~40 s to fail, and the step's own retries multiply
that. Here:

- status and read faults (5xx, 408/429, a reset mid-answer) keep the count-bounded retries with
  a short back-off; the Prefect task retries those again as transient;
- connection faults (refused, connect time-out, a resolver hiccup) are retried quickly (0.5, 1,
  2, 4 s) only while `connect_budget` seconds have not passed since the request's first attempt,
  which bridges an emulator or proxy restart; after that the step fails with
  `StorageUnreachableError`, which is not retried again;
- a host name that does not exist is not retried at all.
"""

from __future__ import annotations

import random
import time
from typing import Any

from azure.core.exceptions import ServiceRequestError
from azure.storage.blob import ExponentialRetry

from tasks.storage.azure_errors import unreachable_reason

#: Reconnects after a connection fault, at most (the time budget usually ends them first).
CONNECT_RETRIES = 4
_CONNECT_BACKOFF = (0.5, 1.0, 2.0, 4.0)


class BoundedRetry(ExponentialRetry):
    """`ExponentialRetry` whose connection-fault retries are bounded by time, not by `retry_total`.

    >>> policy = BoundedRetry(retry_total=3, connect_budget=10.0)
    >>> policy.connect_budget
    10.0
    """

    def __init__(self, *, retry_total: int, connect_budget: float, **kwargs: Any) -> None:
        super().__init__(initial_backoff=1, increment_base=2, retry_total=retry_total, random_jitter_range=1, **kwargs)
        self.connect_budget = connect_budget

    def configure_retries(self, request) -> dict[str, Any]:
        settings = super().configure_retries(request)
        settings.update(started=time.monotonic(), reconnects=0, reconnecting=False)
        return settings

    def get_backoff_time(self, settings: dict[str, Any]) -> float:
        if settings["reconnecting"]:
            # Jitter so 16 transfer threads do not knock on a recovering endpoint at the same instant.
            step = _CONNECT_BACKOFF[min(settings["reconnects"], len(_CONNECT_BACKOFF)) - 1]
            return step * random.uniform(0.8, 1.2)
        return super().get_backoff_time(settings)

    def increment(self, settings, request, response=None, error=None) -> bool:
        settings["reconnecting"] = False
        if isinstance(error, ServiceRequestError):
            reason = unreachable_reason(error)
            if reason is not None:
                return self._reconnect(settings, request, response, error, permanent=reason[1])
        return super().increment(settings, request, response=response, error=error)

    def _reconnect(self, settings, request, response, error, *, permanent: bool) -> bool:
        elapsed = time.monotonic() - settings["started"]
        if permanent or settings["reconnects"] >= CONNECT_RETRIES or elapsed >= self.connect_budget:
            # Read back by map_azure_error for the message: how hard we tried.
            error.taoflow_attempts = settings["reconnects"] + 1
            error.taoflow_seconds = elapsed
            return False
        # The budget is time: a reconnect does not use up the status/read retries.
        settings["total"] += 1
        settings["connect"] += 1
        settings["reconnects"] += 1
        settings["reconnecting"] = True
        return super().increment(settings, request, response=response, error=error)
