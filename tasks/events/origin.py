"""Where an event's blob lives, and whether the bridge may act on it.

A BlobCreated event names its storage account twice: in `topic` (Event Grid) or `source`
(CloudEvents), `/subscriptions/…/providers/Microsoft.Storage/storageAccounts/ACCOUNT`, and
in `data.url`. The container and blob name also appear twice: in `subject`
(`/blobServices/default/containers/CONTAINER/blobs/NAME`) and in the URL's path. The dataset
location a training run reads (with the worker's storage credentials) is cut from the URL,
so the bridge believes the URL only when

- its host is an Azure Storage endpoint of a known cloud (`ACCOUNT.blob.core.windows.net`,
  `.dfs.`, US Gov, China) or one of the operator's `endpoints` (Azurite, custom domains),
- its account, container and blob name are the topic's and the subject's, and
- the account (and container) is on the operator's allow-list, when there is one.

`read_origin` answers the first two (a mismatch is a forged or corrupt event); `allows`
the third (a policy decision about a well-formed event).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field

from tasks.errors import ConfigError
from tasks.storage.endpoints import CLOUD_HOST, CLOUD_SUFFIXES

_ACCOUNT = re.compile(r"^[a-z0-9]{3,24}$")
_CONTAINER = re.compile(r"^(?:\$root|[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62})$")
_ALLOW_ENTRY = re.compile(r"^(?P<account>[a-z0-9]{3,24})(?:/(?P<container>[^/]+))?$")

ALLOW_ENV = "TAOFLOW_EVENTS_ALLOW"
ENDPOINTS_ENV = "TAOFLOW_EVENTS_ENDPOINTS"


class EventOrigins(BaseModel):
    """Which storage the bridge turns events into datasets for."""

    model_config = ConfigDict(frozen=True)

    allow: tuple[str, ...] = Field(
        default=(),
        description="Allow-list of `ACCOUNT` (any container) or `ACCOUNT/CONTAINER` entries; an event for "
        f"storage outside it is refused with 403. Empty: every account. CLI --allow, env {ALLOW_ENV} "
        "(space-separated).",
    )
    endpoints: tuple[str, ...] = Field(
        default=(),
        description="Blob endpoints to accept besides Azure's own `ACCOUNT.blob.<cloud suffix>` hosts, as account "
        "URLs: path-style `http://127.0.0.1:10000/devstoreaccount1` (Azurite) or a custom domain "
        f"`https://data.example.com`. CLI --endpoint, env {ENDPOINTS_ENV} (space-separated).",
    )

    def check(self) -> None:
        """ConfigError for an entry that can never match, so a typo is not a silent refuse-all."""
        for entry in self.allow:
            found = _ALLOW_ENTRY.match(entry)
            if not found or (found["container"] and not _CONTAINER.match(found["container"])):
                raise ConfigError(
                    f"allow-list entry {entry!r} is not ACCOUNT or ACCOUNT/CONTAINER",
                    where=f"--allow / ${ALLOW_ENV}",
                    fix="write storage account names in lower case, e.g. 'mydata' or 'mydata/datasets'",
                )
        for endpoint in self.endpoints:
            _endpoint_parts(endpoint)

    def allows(self, account: str, container: str) -> bool:
        """Whether the allow-list (if any) covers this account and container.

        >>> EventOrigins(allow=("acct/datasets",)).allows("acct", "logs")
        False
        """
        if not self.allow:
            return True
        return account in self.allow or f"{account}/{container}" in self.allow


@dataclass(frozen=True, slots=True)
class BlobOrigin:
    """A blob URL taken apart: the account's blob endpoint (no trailing slash), account, container, blob."""

    endpoint: str
    account: str
    container: str
    blob: str


class OriginMismatch(ValueError):
    """The URL is not where the event says the blob is (or not a storage endpoint at all)."""


def read_origin(url: str, *, account: str, container: str, blob: str, endpoints: tuple[str, ...] = ()) -> BlobOrigin:
    """Check a BlobCreated's `data.url` against its topic's account and subject's container/blob.

    >>> read_origin("https://acct.blob.core.windows.net/data/a/b.png", account="acct", container="data", blob="a/b.png").endpoint
    'https://acct.blob.core.windows.net'
    """
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None or parts.query or parts.fragment:
        raise OriginMismatch("data.url carries user info, a query or a fragment; storage events carry none")
    host = (parts.hostname or "").lower()
    cloud = CLOUD_HOST.match(host)
    if cloud and parts.scheme == "https" and parts.port in (None, 443):
        # The blob endpoint serves what the dfs one does, and only blob URLs are training locations.
        origin = BlobOrigin(f"https://{cloud['account']}.blob.{cloud['suffix']}", cloud["account"], *_path(parts.path))
    else:
        origin = _configured(url, endpoints)
    if origin.account != account.lower():
        raise OriginMismatch(f"data.url is in storage account {origin.account!r}, the topic names {account!r}")
    if origin.container != container:
        raise OriginMismatch(f"data.url is in container {origin.container!r}, the subject names {container!r}")
    if origin.blob != blob:
        raise OriginMismatch(f"data.url names blob {origin.blob[:200]!r}, the subject names {blob[:200]!r}")
    return origin


def _configured(url: str, endpoints: tuple[str, ...]) -> BlobOrigin:
    for endpoint in endpoints:
        base, account = _endpoint_parts(endpoint)
        if url.startswith(base + "/"):
            return BlobOrigin(base, account, *_path(url[len(base):]))
    host = urlsplit(url).netloc or url[:80]
    raise OriginMismatch(
        f"data.url points at {host!r}, which is neither an Azure Storage endpoint "
        f"(ACCOUNT.blob.{{{','.join(CLOUD_SUFFIXES)}}} over https) nor a configured --endpoint"
    )


def _endpoint_parts(endpoint: str) -> tuple[str, str]:
    """(normalised account URL, account name) of a configured endpoint."""
    parts = urlsplit(endpoint.strip())
    segments = [s for s in parts.path.split("/") if s]
    account = segments[-1] if segments else (parts.hostname or "").split(".", 1)[0]
    if parts.scheme not in {"http", "https"} or not parts.hostname or parts.query or parts.fragment \
            or len(segments) > 1 or not _ACCOUNT.match(account):
        raise ConfigError(
            f"endpoint {endpoint!r} is not a blob account URL",
            where=f"--endpoint / ${ENDPOINTS_ENV}",
            fix="give the account URL: http://HOST:PORT/ACCOUNT (Azurite, path-style) or https://ACCOUNT.HOST",
        )
    base = f"{parts.scheme}://{parts.netloc}" + (f"/{segments[0]}" if segments else "")
    return base, account


def _path(path: str) -> tuple[str, str]:
    container, _, blob = path.lstrip("/").partition("/")
    return container, unquote(blob)
