"""From a location string to an open store: resolve AzureML, pick credentials, open the client."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable, Mapping

from tasks.storage.azureml import resolve_datastore
from tasks.storage.credentials import bind_account, configured_endpoints, open_container, resolve_credentials
from tasks.storage.endpoints import check_endpoint, check_transport, is_cloud_endpoint
from tasks.storage.locations import Location, parse_location
from tasks.storage.quick_list import QuickLister
from tasks.storage.stores import BlobStore, LocalStore, Store


@dataclass(frozen=True)
class StorageAccess:
    """How to reach remote locations. The defaults follow the Azure conventions (env, identity)."""

    credentials: str | None = None
    """Name of a prefect-azure AzureBlobStorageCredentials block."""
    connection_string: str | None = field(default=None, repr=False)
    """A storage connection string; overrides the block and env AZURE_STORAGE_CONNECTION_STRING."""
    datastores: Mapping[str, tuple[str, str]] | None = None
    """Offline AzureML datastore map {name: (connection string or account URL, container)}."""
    ml_client_factory: Callable[[str | None, str | None, str | None], Any] | None = field(default=None, repr=False)
    """Builds the AzureML MLClient for live datastore resolution (tests put a fake here)."""
    sdk_retries: int = 3
    """Retries the Azure SDK makes on its own for each request before a step fails as transient."""
    connect_budget: float = 10.0
    """Seconds a request keeps reconnecting to an endpoint that refuses or does not answer (see tasks.storage.retry)."""


def open_store(location: str | Path | Location, access: StorageAccess | None = None, *, pool_size: int = 32) -> Store:
    """The store behind any accepted location.

    >>> import tempfile
    >>> type(open_store(tempfile.mkdtemp())).__name__
    'LocalStore'
    """
    access = access or StorageAccess()
    loc = parse_location(location)
    if loc.kind == "local":
        return LocalStore(loc)
    creds = None
    if loc.kind == "azureml":
        loc, creds = resolve_datastore(loc, mapping=access.datastores, client_factory=access.ml_client_factory)
    elif loc.account_url and not is_cloud_endpoint(loc.account_url):
        # Before any credential exists: the location alone must not choose where a token goes.
        configured = configured_endpoints(block=access.credentials, connection_string=access.connection_string)
        check_endpoint(loc.account_url, configured, loc.display)
    if loc.account_url:
        check_transport(loc.account_url, loc.display)
    creds = creds or resolve_credentials(loc, block=access.credentials, connection_string=access.connection_string)
    loc = bind_account(loc, creds)
    check_transport(loc.account_url, loc.display)  # the credentials' own endpoint (a connection string's)
    # The SDK client is opened on first use: an unchanged re-sync may need only the quick listing.
    client = partial(open_container, loc, creds, pool_size=pool_size, retries=access.sdk_retries,
                     connect_budget=access.connect_budget)
    quick = QuickLister.for_credentials(loc.account_url, loc.container, creds)
    return BlobStore(loc, client, creds.source, quick=quick)
