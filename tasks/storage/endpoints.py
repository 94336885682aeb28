"""Which hosts may receive a storage credential.

A blob location names its endpoint, and whatever credential taoflow picks (an identity token from
`DefaultAzureCredential`, a service principal's token, a SAS, an account-key signature) travels
to that endpoint. A location from a job file, a deployment parameter or an event must therefore
not be able to name *any* host: `https://ACCOUNT.blob.attacker.example/...` would otherwise
receive a bearer token for Azure Storage.

Allowed endpoints: the blob and dfs endpoints of the public, US Government and China clouds, or
exactly (scheme, host, port, path) the endpoint of a configured connection string or
`AzureBlobStorageCredentials` block, which is how Azurite and custom/private endpoints are used.

And only over HTTPS (`check_transport`): `http://ACCOUNT.blob.core.windows.net/...?SAS` sent the SAS
in cleartext. Plain HTTP is left to an emulator on this machine (a loopback address or `localhost`).
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from tasks.errors import UntrustedEndpointError

#: Storage endpoint suffixes of the Azure clouds (AzureCloud, AzureUSGovernment, AzureChinaCloud).
CLOUD_SUFFIXES = ("core.windows.net", "core.usgovcloudapi.net", "core.chinacloudapi.cn")
#: An Azure Storage host: ACCOUNT.blob|dfs.<cloud suffix> (the event bridge checks hosts with it too).
CLOUD_HOST = re.compile(
    r"^(?P<account>[a-z0-9]{3,24})\.(?P<service>blob|dfs)\.(?P<suffix>" + "|".join(map(re.escape, CLOUD_SUFFIXES)) + r")$"
)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalized(url: str) -> tuple[str, str, int | None, str]:
    """(scheme, host, port, path) of an endpoint URL, in the form two equal endpoints share.

    >>> normalized("HTTPS://Acct.blob.core.windows.net:443/")
    ('https', 'acct.blob.core.windows.net', None, '')
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = -1  # an invalid port never equals a configured one
    if port == _DEFAULT_PORTS.get(scheme):
        port = None
    return scheme, (parts.hostname or "").lower(), port, parts.path.rstrip("/")


def is_cloud_endpoint(url: str) -> bool:
    """True for `http(s)://ACCOUNT.blob|dfs.<Azure cloud suffix>` with nothing else in the authority.

    >>> is_cloud_endpoint("https://acct.blob.core.windows.net"), is_cloud_endpoint("https://acct.blob.evil.example")
    (True, False)
    """
    parts = urlsplit(url.strip())
    scheme, host, port, path = normalized(url)
    return (
        scheme in _DEFAULT_PORTS
        and "@" not in parts.netloc
        and port is None
        and path == ""
        and bool(CLOUD_HOST.match(host))
    )


def check_endpoint(account_url: str, configured: list[tuple[str, str]], where: str) -> None:
    """Raise `UntrustedEndpointError` unless `account_url` is a cloud endpoint or one of `configured`
    [(endpoint, where it was configured)]. Call it before any credential is created or used.

    >>> check_endpoint("http://127.0.0.1:10000/devstoreaccount1",
    ...                [("http://127.0.0.1:10000/devstoreaccount1/", "env AZURE_STORAGE_CONNECTION_STRING")], "x")
    """
    if is_cloud_endpoint(account_url) or any(normalized(account_url) == normalized(e) for e, _ in configured):
        return
    scheme, host, port, path = normalized(account_url)
    shown = f"{scheme}://{host}" + (f":{port}" if port else "") + path
    known = "; ".join(f"{e} ({source})" for e, source in configured) or "none"
    raise UntrustedEndpointError(
        f"refusing to send storage credentials to {shown}: it is not an Azure Storage endpoint "
        f"(ACCOUNT.blob|dfs.{{{', '.join(CLOUD_SUFFIXES)}}}) nor the configured endpoint (configured: {known})",
        where=where,
        fix="use the account's https://ACCOUNT.blob.core.windows.net URL (or its US Gov / China cloud form); "
        "for Azurite or a custom endpoint, configure exactly that endpoint in AZURE_STORAGE_CONNECTION_STRING "
        "(BlobEndpoint=...) or in the AzureBlobStorageCredentials block",
    )


def is_loopback(host: str) -> bool:
    """True for `localhost` and loopback addresses (127.0.0.0/8, ::1): this machine.

    >>> is_loopback("127.0.0.1"), is_loopback("::1"), is_loopback("localhost"), is_loopback("10.0.0.7")
    (True, True, True, False)
    """
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_transport(account_url: str, where: str) -> None:
    """Raise `UntrustedEndpointError` unless a credential sent to `account_url` travels encrypted:
    HTTPS, or plain HTTP to this machine (Azurite). Call it before any request is made.

    >>> check_transport("http://127.0.0.1:10000/devstoreaccount1", "x")
    >>> check_transport("http://acct.blob.core.windows.net", "x")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    tasks.errors.UntrustedEndpointError: x: refusing to send storage credentials over plain http:// to acct...
    """
    scheme, host, _, _ = normalized(account_url)
    if scheme == "https" or (scheme == "http" and is_loopback(host)):
        return
    raise UntrustedEndpointError(
        f"refusing to send storage credentials over plain {scheme}:// to {host}: anyone on the way could read them",
        where=where,
        fix="write the location with https:// (for a connection string: DefaultEndpointsProtocol=https, or a "
        "BlobEndpoint=https://...); plain http:// is only for an emulator on this machine (127.0.0.1, ::1, localhost)",
    )
