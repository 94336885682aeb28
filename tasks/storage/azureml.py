"""AzureML datastore URIs resolved to the blob account, container and prefix behind them.

Two modes:

- **offline**: a mapping ``{datastore: (connection string or account URL, container)}`` given in
  code or as JSON in env ``TAOFLOW_AZUREML_DATASTORES``. Tests, Azurite and air-gapped sites use it.
- **live**: azure-ai-ml's ``MLClient.datastores.get`` (the optional ``azureml`` extra, imported
  only here). The workspace comes from the long URI form, or else from env
  ``AZUREML_SUBSCRIPTION_ID`` / ``AZUREML_RESOURCE_GROUP`` / ``AZUREML_WORKSPACE_NAME``, or else
  from a ``config.json`` found by ``MLClient.from_config``.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from typing import Any, Callable, Mapping

from tasks.errors import ConfigError, StorageNotFoundError
from tasks.storage.credentials import BlobCredentials, parse_connection_string
from tasks.storage.locations import Location, parse_location

ENV_MAPPING = "TAOFLOW_AZUREML_DATASTORES"
DatastoreMap = Mapping[str, tuple[str, str]]
#: Builds an MLClient for (subscription, resource group, workspace); any None means "from config".
ClientFactory = Callable[[str | None, str | None, str | None], Any]


def _mapping_from_env() -> dict[str, tuple[str, str]]:
    raw = os.environ.get(ENV_MAPPING)
    if not raw:
        return {}
    try:
        data = json.loads(raw)
        return {name: (str(v[0]), str(v[1])) for name, v in data.items()}
    except (ValueError, TypeError, IndexError, AttributeError) as exc:
        raise ConfigError(
            f"env {ENV_MAPPING} is not valid JSON of the form {{\"NAME\": [\"CONNECTION_STRING_OR_URL\", \"CONTAINER\"]}}",
            fix="fix or unset the variable",
        ) from exc


def _default_client_factory(sub: str | None, rg: str | None, ws: str | None) -> Any:
    try:
        from azure.ai.ml import MLClient
        from azure.identity import DefaultAzureCredential
    except ImportError as exc:
        raise ConfigError(
            "resolving azureml:// locations needs azure-ai-ml, which is not installed",
            fix=f"pip install 'taoflow[azureml]', or map datastores offline with env {ENV_MAPPING}",
        ) from exc
    sub = sub or os.environ.get("AZUREML_SUBSCRIPTION_ID")
    rg = rg or os.environ.get("AZUREML_RESOURCE_GROUP")
    ws = ws or os.environ.get("AZUREML_WORKSPACE_NAME")
    if sub and rg and ws:
        return MLClient(DefaultAzureCredential(), sub, rg, ws)
    return MLClient.from_config(DefaultAzureCredential())


def resolve_datastore(
    location: Location,
    *,
    mapping: DatastoreMap | None = None,
    client_factory: ClientFactory | None = None,
) -> tuple[Location, BlobCredentials | None]:
    """The blob location behind an `azureml://` location, plus credentials if the mapping/datastore has them."""
    if location.kind != "azureml":
        return location, None
    table = dict(mapping) if mapping is not None else _mapping_from_env()
    if location.datastore in table:
        return _from_mapping(location, *table[location.datastore])
    if mapping is not None and client_factory is None:
        raise StorageNotFoundError(
            f"datastore {location.datastore!r} is not in the offline mapping ({', '.join(sorted(table)) or 'empty'})",
            where=location.display,
            fix=f"add it to {ENV_MAPPING} or use the live AzureML workspace",
        )
    factory = client_factory or _default_client_factory
    client = factory(location.subscription, location.resource_group, location.workspace)
    try:
        store = client.datastores.get(location.datastore, include_secrets=True)
    except Exception as exc:  # noqa: BLE001 - azure-ai-ml raises many types; all mean "cannot resolve"
        raise StorageNotFoundError(
            f"cannot resolve datastore {location.datastore!r}: {type(exc).__name__}: {exc}",
            where=location.display,
            fix="check the datastore name and the workspace (az ml datastore list)",
        ) from exc
    return _from_datastore(location, store)


def _blob_location(location: Location, account: str, account_url: str, container: str) -> Location:
    return replace(
        location,
        kind="blob",
        account=account,
        account_url=account_url.rstrip("/"),
        container=container,
        datastore=None,
        subscription=None,
        resource_group=None,
        workspace=None,
    )


def _from_mapping(location: Location, target: str, container: str) -> tuple[Location, BlobCredentials | None]:
    if target.lower().startswith(("http://", "https://")):
        base = parse_location(f"{target.rstrip('/')}/{container}")
        return _blob_location(location, base.account, base.account_url, container), None
    account, endpoint = parse_connection_string(target)
    creds = BlobCredentials(f"offline datastore mapping for {location.datastore!r}", connection_string=target)
    return _blob_location(location, account, endpoint, container), creds


def _from_datastore(location: Location, store: Any) -> tuple[Location, BlobCredentials | None]:
    container = getattr(store, "container_name", None) or getattr(store, "filesystem", None)
    account = getattr(store, "account_name", None)
    if not container or not account:
        raise ConfigError(
            f"datastore {location.datastore!r} is a {type(store).__name__}, not a blob or ADLS Gen2 datastore",
            where=location.display,
            fix="use a datastore backed by Azure Blob Storage or ADLS Gen2",
        )
    protocol = getattr(store, "protocol", None) or "https"
    endpoint = getattr(store, "endpoint", None) or "core.windows.net"
    account_url = f"{protocol}://{account}.blob.{endpoint}"
    blob = _blob_location(location, account, account_url, container)
    secrets = getattr(store, "credentials", None)
    key = getattr(secrets, "account_key", None)
    sas = getattr(secrets, "sas_token", None)
    source = f"AzureML datastore {location.datastore!r}"
    if key:
        conn = f"DefaultEndpointsProtocol={protocol};AccountName={account};AccountKey={key};EndpointSuffix={endpoint}"
        return blob, BlobCredentials(f"{source} (account key)", connection_string=conn)
    if sas:
        return blob, BlobCredentials(f"{source} (SAS)", account_url=account_url, credential=sas.lstrip("?"))
    return blob, None  # identity-based datastore: the caller's credential chain applies
