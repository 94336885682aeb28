"""The dataset-ready Prefect event and the HTTP client that posts it to `$PREFECT_API_URL/events`.

The event id is the window id (a uuid5), so posting the same window twice, after a crash
between the POST and the bookkeeping, is absorbed by the server's seen-id check.
"""

from __future__ import annotations

import base64
import re
from datetime import datetime, timezone

import httpx

from tasks.errors import EmitError, EventError, busy_answer
from tasks.events.model import Window, endpoint_of

DATASET_READY = "taoflow.dataset.ready"
#: Resource labels a deployment trigger templates from, e.g. `{{ event.resource["taoflow.dataset.location"] }}`.
LABEL_ACCOUNT = "taoflow.dataset.account"
LABEL_CONTAINER = "taoflow.dataset.container"
LABEL_PREFIX = "taoflow.dataset.prefix"
LABEL_LOCATION = "taoflow.dataset.location"
#: The account's blob endpoint the event came from (`https://ACCOUNT.blob.<cloud suffix>`, Azurite's
#: `http://HOST:PORT/ACCOUNT`, a configured custom domain), so a trigger can name sibling containers.
LABEL_ENDPOINT = "taoflow.dataset.endpoint"
#: The prefix as one safe path component (letters, digits, `.`, `_`, `-`; no leading dot), for folder names.
LABEL_SLUG = "taoflow.dataset.slug"
SLUG_MAX = 80
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat()


def slug(text: str) -> str:
    """One safe path component from a dataset prefix: every other character run becomes `-`.

    >>> slug("incoming/.kitti 04#b/ünï")
    'incoming-.kitti-04-b-n'
    """
    cleaned = _UNSAFE.sub("-", text).strip(".-")[:SLUG_MAX].rstrip(".-")
    return cleaned or "dataset"


def dataset_ready_event(window: Window, reason: str, *, marker: str, source: str) -> dict:
    """The Prefect event (API JSON form) announcing one dataset ready to train on.

    >>> window = Window(account="acct", container="datasets", prefix="incoming/kitti",
    ...                 location="https://acct.blob.core.windows.net/datasets/incoming/kitti/",
    ...                 first_event_id="e1", first_seen=0.0, last_seen=60.0, blob_count=12)
    >>> event = dataset_ready_event(window, "quiet", marker="_READY", source="event-grid")
    >>> event["event"], event["resource"]["taoflow.dataset.slug"], event["payload"]["blob_count"]
    ('taoflow.dataset.ready', 'incoming-kitti', 12)
    """
    return {
        "id": str(window.window_id),
        "occurred": _iso(window.last_seen),
        "event": DATASET_READY,
        "resource": {
            "prefect.resource.id": f"azure.blob.{window.key}",
            "prefect.resource.name": f"{window.container}/{window.prefix}",
            LABEL_ACCOUNT: window.account,
            LABEL_CONTAINER: window.container,
            LABEL_PREFIX: window.prefix,
            LABEL_LOCATION: window.location,
            LABEL_ENDPOINT: endpoint_of(window.location, window.container, window.prefix),
            LABEL_SLUG: slug(window.prefix or window.container),
        },
        "related": [],
        "payload": {
            "reason": reason,
            "marker": marker if window.marker_time is not None else None,
            "source": source,
            "blob_count": window.blob_count,
            "bytes": window.bytes,
            "first_seen": _iso(window.first_seen),
            "last_seen": _iso(window.last_seen),
            "window_id": str(window.window_id),
        },
    }


class PrefectEventsEmitter:
    """POSTs a list of events to a Prefect server (OSS `/api/events` or Cloud's `.../events`)."""

    def __init__(
        self,
        api_url: str,
        *,
        auth_string: str | None = None,
        api_key: str | None = None,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not api_url:
            raise EventError(
                "no Prefect API URL to send dataset-ready events to",
                fix="set PREFECT_API_URL (e.g. http://127.0.0.1:4200/api)",
            )
        headers = {}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        elif auth_string:
            headers["Authorization"] = "Basic " + base64.b64encode(auth_string.encode()).decode()
        self.url = api_url.rstrip("/") + "/events"
        self._client = httpx.Client(headers=headers, timeout=timeout, transport=transport)

    def close(self) -> None:
        self._client.close()

    def emit(self, events: list[dict]) -> None:
        if not events:
            return
        try:
            response = self._client.post(self.url, json=events)
        except httpx.HTTPError as exc:
            error = EmitError(f"the Prefect API is unreachable: {exc.__class__.__name__}: {exc}", where=self.url)
            error.transient = True
            raise error from None
        if response.is_success:
            return
        error = EmitError(
            f"the Prefect API answered {response.status_code}: {response.text[:300]}",
            where=self.url,
            fix="check PREFECT_API_URL and its credentials (PREFECT_API_KEY / PREFECT_API_AUTH_STRING)",
        )
        error.transient = busy_answer(response.status_code)
        raise error
