"""How we authenticate to Blob Storage, the Prefect way, with the *sync* SDK.

Sources, first match wins:

1. a SAS token in the location URL;
2. a connection string given explicitly (tests, the bench);
3. a prefect-azure `AzureBlobStorageCredentials` block by name (its connection string, or its
   account URL with a service principal or `DefaultAzureCredential`);
4. the environment variable ``AZURE_STORAGE_CONNECTION_STRING`` (the Azure convention);
5. the location's account URL with `DefaultAzureCredential` (managed identity, az login, ...).

We read the block's fields and build *sync* clients ourselves: the block's own clients are
`azure.storage.blob.aio` ones, which do not fit our thread-pool transfers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from tasks.errors import ConfigError, StorageAuthError
from tasks.storage.locations import Location

ENV_CONNECTION_STRING = "AZURE_STORAGE_CONNECTION_STRING"
_AZURITE_DEFAULT = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
    "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
    "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;"
)


@dataclass(frozen=True)
class BlobCredentials:
    """A resolved way in: either a connection string or an account URL plus a credential."""

    source: str  # human description for messages, e.g. "env AZURE_STORAGE_CONNECTION_STRING"
    connection_string: str | None = field(default=None, repr=False)
    account_url: str | None = None
    credential: Any = field(default=None, repr=False)

    @property
    def account(self) -> str | None:
        if self.connection_string:
            return parse_connection_string(self.connection_string)[0]
        return None


def connection_settings(text: str) -> dict[str, str]:
    """The settings of a storage connection string, by lower-case name.

    >>> connection_settings("AccountName=a;AccountKey=k==;")
    {'accountname': 'a', 'accountkey': 'k=='}
    """
    if text.strip().lower().rstrip(";") == "usedevelopmentstorage=true":
        text = _AZURITE_DEFAULT
    parts: dict[str, str] = {}
    for item in text.split(";"):
        key, sep, value = item.partition("=")
        if sep:
            parts[key.strip().lower()] = value.strip()
    return parts


def parse_connection_string(text: str) -> tuple[str, str]:
    """(account name, blob endpoint URL) of a storage connection string."""
    parts = connection_settings(text)
    account = parts.get("accountname")
    endpoint = parts.get("blobendpoint")
    if not endpoint and account:
        protocol = parts.get("defaultendpointsprotocol", "https")
        endpoint = f"{protocol}://{account}.blob.{parts.get('endpointsuffix', 'core.windows.net')}"
    if not endpoint:
        raise ConfigError(
            "the storage connection string has neither AccountName nor BlobEndpoint",
            fix="copy the connection string from the portal (Access keys) or use a SAS URL",
        )
    if not account:
        account = endpoint.rstrip("/").rsplit("/", 1)[-1] if "127.0.0.1" in endpoint else endpoint.split("//")[-1].split(".")[0]
    return account, endpoint.rstrip("/")


def load_block(name: str):
    """The prefect-azure `AzureBlobStorageCredentials` block `name` from the Prefect server; a missing
    one is one `ConfigError` saying how to create it."""
    try:
        from prefect_azure import AzureBlobStorageCredentials
    except ImportError as exc:  # pragma: no cover - prefect-azure is a dependency
        raise ConfigError("prefect-azure is not installed", fix="pip install prefect-azure") from exc
    try:
        return AzureBlobStorageCredentials.load(name)
    except ValueError:
        # Prefect's ValueError adds nothing to this message; chaining it would print its traceback.
        raise ConfigError(
            f"the storage credentials block {name!r} (an AzureBlobStorageCredentials block) does not exist "
            "on this Prefect server",
            where="storage_credentials",
            fix=f"create it once: python -c \"from prefect_azure import AzureBlobStorageCredentials as C; "
            f"C(connection_string='<connection string>').save('{name}')\" (or account_url=... for an identity; "
            "or in the Prefect UI: Blocks -> Azure Blob Storage Credentials), or leave storage_credentials empty "
            f"to use {ENV_CONNECTION_STRING} on the worker",
        ) from None


def _from_block(name: str) -> BlobCredentials:
    block = load_block(name)
    source = f"Prefect block {name!r}"
    if block.connection_string is not None:
        return BlobCredentials(source=source, connection_string=block.connection_string.get_secret_value())
    if block.client_id and block.tenant_id and block.client_secret:
        from azure.identity import ClientSecretCredential

        credential = ClientSecretCredential(block.tenant_id, block.client_id, block.client_secret.get_secret_value())
        return BlobCredentials(f"{source} (service principal)", account_url=block.account_url, credential=credential)
    from azure.identity import DefaultAzureCredential

    return BlobCredentials(
        f"{source} (DefaultAzureCredential)", account_url=block.account_url, credential=DefaultAzureCredential()
    )


def configured_endpoints(*, block: str | None = None, connection_string: str | None = None) -> list[tuple[str, str]]:
    """[(blob endpoint, where it is configured)]: the endpoints an operator set up, besides Azure's own.

    Reads configuration only; no credential is created or used.

    >>> configured_endpoints(connection_string="UseDevelopmentStorage=true")[0]  # then env's, if set
    ('http://127.0.0.1:10000/devstoreaccount1', 'the given connection string')
    """
    found = []
    if connection_string:
        found.append((parse_connection_string(connection_string)[1], "the given connection string"))
    if block:
        loaded = load_block(block)
        if loaded.connection_string is not None:
            found.append((parse_connection_string(loaded.connection_string.get_secret_value())[1], f"block {block!r}"))
        elif loaded.account_url:
            found.append((loaded.account_url, f"block {block!r}"))
    env = os.environ.get(ENV_CONNECTION_STRING)
    if env:
        found.append((parse_connection_string(env)[1], f"env {ENV_CONNECTION_STRING}"))
    return found


def resolve_credentials(
    location: Location,
    *,
    block: str | None = None,
    connection_string: str | None = None,
) -> BlobCredentials:
    """The credentials for a blob `location` (see the module doc for the order)."""
    if location.sas:
        return BlobCredentials("the SAS token in the URL", account_url=location.account_url, credential=location.sas)
    if connection_string:
        return BlobCredentials("the given connection string", connection_string=connection_string)
    if block:
        return _from_block(block)
    env = os.environ.get(ENV_CONNECTION_STRING)
    if env:
        return BlobCredentials(f"env {ENV_CONNECTION_STRING}", connection_string=env)
    if location.account_url and location.account_url.startswith("http://"):
        # Identity tokens travel over HTTPS only; an http:// endpoint is an emulator (Azurite).
        raise StorageAuthError(
            f"no credentials for {location.display}: an http:// endpoint needs a connection string or a SAS",
            fix=f"set {ENV_CONNECTION_STRING} (for Azurite: its development connection string) or add a SAS to the URL",
        )
    if location.account_url:
        from azure.identity import DefaultAzureCredential

        return BlobCredentials(
            "DefaultAzureCredential", account_url=location.account_url, credential=DefaultAzureCredential()
        )
    raise StorageAuthError(
        f"no credentials for {location.display}: an az:// location takes its account from the credentials",
        fix=f"pass --credentials BLOCK, set {ENV_CONNECTION_STRING}, or use an https://ACCOUNT.blob.core.windows.net URL",
    )


def bind_account(location: Location, creds: BlobCredentials) -> Location:
    """The location with its account filled in and checked against the credentials."""
    if creds.connection_string:
        account, endpoint = parse_connection_string(creds.connection_string)
        if location.account and location.account != account:
            raise StorageAuthError(
                f"the location is in account {location.account!r} but {creds.source} is for account {account!r}",
                where=location.display,
                fix="use credentials for the location's account",
            )
        return location.with_account(account, endpoint)
    url = location.account_url or creds.account_url
    if not url:
        raise StorageAuthError(f"{creds.source} names no account URL", where=location.display)
    account = location.account or url.split("//")[-1].split(".")[0]
    return location.with_account(account, url)


def open_container(
    location: Location, creds: BlobCredentials, *, pool_size: int = 32, retries: int = 3, connect_budget: float = 10.0
):
    """A sync `ContainerClient` with a connection pool big enough for `pool_size` threads.

    The SDK's default pool holds 10 connections; more threads than that would queue on it.
    Retries: see `tasks.storage.retry` (connection faults bounded by `connect_budget` seconds).
    """
    import requests
    from azure.storage.blob import BlobServiceClient

    from tasks.storage.retry import BoundedRetry
    from tasks.storage.transport import DirectTransport

    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=pool_size)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    # With trust_env, requests re-reads the proxy variables (walking all of os.environ twice) and
    # ~/.netrc on every request: an eighth of the client's CPU per small blob. This session only
    # talks to one endpoint, so the same settings are read once here: HTTP(S)_PROXY / NO_PROXY
    # for that endpoint and REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE. (~/.netrc is not read: the SDK
    # signs every request itself.)
    session.trust_env = False
    session.proxies.update(requests.utils.get_environ_proxies(location.account_url or ""))
    verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    transport = DirectTransport(session=session, connection_verify=verify, connection_timeout=10, read_timeout=60,
                                connection_data_block_size=256 * 1024)  # the SDK's own block size
    options = dict(
        transport=transport,
        # The SDK's default first back-off is 15 s; a step-level retry (the Prefect task) follows anyway.
        retry_policy=BoundedRetry(retry_total=retries, connect_budget=connect_budget),
    )
    if creds.connection_string:
        service = BlobServiceClient.from_connection_string(creds.connection_string, **options)
    else:
        service = BlobServiceClient(location.account_url, credential=creds.credential, **options)
    return service.get_container_client(location.container)
