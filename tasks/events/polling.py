"""The polling source: list blobs under the rules, diff against the last listing, feed the debouncer.

Every blob whose etag is new or changed since the last poll becomes a `BlobCreated`
(api `Poll`), with the blob's last-modified time as its event time, so the marker seal
works as it does for Event Grid. State between polls is one JSON document: the etags seen
per container plus the debouncer's `MemoryStore`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Iterable
from urllib.parse import quote

from tasks.errors import StorageAuthError, StorageError, TransientStorageError
from tasks.events.debounce import Debouncer, DebounceSettings, Emitter, FlushResult
from tasks.events.model import BlobCreated
from tasks.events.rules import PrefixRule, dataset_prefix
from tasks.events.store import MemoryStore
from tasks.storage.endpoints import check_transport

CONNECTION_STRING_ENV = "AZURE_STORAGE_CONNECTION_STRING"
STATE_VERSION = 1


@dataclass
class PollState:
    """What one poll hands the next: `etags[container][blob] = etag` and the pending windows."""

    etags: dict[str, dict[str, str]] = field(default_factory=dict)
    store: MemoryStore = field(default_factory=MemoryStore)

    def to_dict(self) -> dict:
        return {"version": STATE_VERSION, "etags": self.etags, "debouncer": self.store.to_dict()}

    @classmethod
    def from_dict(cls, data: dict | None) -> "PollState":
        data = data or {}
        if data.get("version", STATE_VERSION) != STATE_VERSION:
            return cls()  # an unknown layout: start over rather than misread it
        etags = {str(c): {str(b): str(e) for b, e in blobs.items()} for c, blobs in data.get("etags", {}).items()}
        return cls(etags=etags, store=MemoryStore.from_dict(data.get("debouncer")))


@dataclass
class PollResult:
    listed: int
    changed: int
    counts: dict[str, int]
    flush: FlushResult


def service_client_from_env(connection_string: str | None = None) -> Any:
    """A sync BlobServiceClient from an explicit or `$AZURE_STORAGE_CONNECTION_STRING` connection string."""
    from azure.storage.blob import BlobServiceClient

    text = connection_string or os.environ.get(CONNECTION_STRING_ENV)
    if not text:
        raise StorageAuthError(
            "no storage credentials to poll with",
            fix=f"set {CONNECTION_STRING_ENV} or name an AzureBlobStorageCredentials block",
        )
    try:
        service = BlobServiceClient.from_connection_string(text)
    except ValueError as exc:
        raise StorageAuthError(f"the connection string is not usable: {exc}", fix="copy it again from the portal") from None
    check_transport(service.url, "the storage connection string the watch polls with")
    return service


def service_client_from_block(block: Any) -> Any:
    """A sync BlobServiceClient from a prefect-azure AzureBlobStorageCredentials block (whose own client is async)."""
    from azure.storage.blob import BlobServiceClient

    def secret(value: Any) -> str | None:
        return value.get_secret_value() if hasattr(value, "get_secret_value") else value

    if getattr(block, "connection_string", None) is not None:
        return service_client_from_env(secret(block.connection_string))
    if getattr(block, "client_secret", None) is not None:
        from azure.identity import ClientSecretCredential

        credential: Any = ClientSecretCredential(block.tenant_id, block.client_id, secret(block.client_secret))
    else:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
    if block.account_url:
        check_transport(block.account_url, "the account_url of the credentials block the watch polls with")
    return BlobServiceClient(account_url=block.account_url, credential=credential)


def list_changes(service: Any, rules: Iterable[PrefixRule], state: PollState) -> tuple[list[BlobCreated], int]:
    """New or changed blobs covered by the rules, and how many blobs were listed; updates `state.etags`."""
    from azure.core.exceptions import AzureError, ClientAuthenticationError, HttpResponseError

    rules = tuple(rules)
    changes: list[BlobCreated] = []
    listed = 0
    try:
        account = service.account_name
        for container in _containers(service, rules):
            client = service.get_container_client(container)
            known = state.etags.get(container, {})
            current: dict[str, str] = {}
            for list_prefix in sorted({r.list_prefix for r in rules if r.matches_container(container)}):
                for blob in client.list_blobs(name_starts_with=list_prefix or None):
                    listed += 1
                    if dataset_prefix(rules, container, blob.name) is None:
                        continue
                    current[blob.name] = blob.etag
                    if known.get(blob.name) != blob.etag:
                        changes.append(_as_event(account, client.url, container, blob))
            state.etags[container] = current
    except ClientAuthenticationError as exc:
        raise StorageAuthError(f"the storage account refused the credentials: {exc.message}") from None
    except HttpResponseError as exc:
        kind = TransientStorageError if (exc.status_code or 500) >= 500 or exc.status_code == 429 else StorageError
        raise kind(f"listing failed: {exc.message}", where=getattr(service, "url", None)) from None
    except AzureError as exc:
        raise TransientStorageError(f"listing failed: {exc}", where=getattr(service, "url", None)) from None
    return changes, listed


def _containers(service: Any, rules: tuple[PrefixRule, ...]) -> list[str]:
    literal = {r.container for r in rules if not any(ch in r.container for ch in "*?[")}
    if len(literal) == len(rules):
        return sorted(literal)
    return sorted(c.name for c in service.list_containers() if any(r.matches_container(c.name) for r in rules))


def _as_event(account: str, container_url: str, container: str, blob: Any) -> BlobCreated:
    return BlobCreated(
        account=account,
        container=container,
        blob=blob.name,
        url=f"{container_url}/{quote(blob.name, safe='/')}",
        endpoint=container_url[: -len(f"/{container}")],
        api="Poll",
        event_id=f"poll:{account}/{container}/{blob.name}@{blob.etag}",
        etag=blob.etag,
        content_length=int(blob.size or 0),
        time=blob.last_modified,
    )


def poll_once(service: Any, settings: DebounceSettings, state: PollState, emitter: Emitter, now: float) -> PollResult:
    """One poll: list, diff, debounce, emit what is due. `state` is updated in place."""
    changes, listed = list_changes(service, settings.rules, state)
    debouncer = Debouncer(state.store, settings)
    counts = debouncer.ingest(changes, now=now)
    return PollResult(listed=listed, changed=len(changes), counts=counts, flush=debouncer.flush(emitter, now))
