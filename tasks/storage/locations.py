"""Where data lives: one parsed, normalised `Location` for every form a user may write.

Accepted forms (anything else is a `ConfigError` that lists them):

- a local path: ``/data/train``, ``./data``, ``file:///data/train``
- ``az://CONTAINER/PREFIX`` (the account comes from the credentials)
- ``abfs[s]://CONTAINER@ACCOUNT.dfs.core.windows.net/PREFIX``
- ``https://ACCOUNT.blob.core.windows.net/CONTAINER/PREFIX[?SAS]``
- path-style (Azurite, private endpoints): ``http://127.0.0.1:10000/ACCOUNT/CONTAINER/PREFIX``
- ``azureml://datastores/NAME/paths/PATH`` and
  ``azureml://subscriptions/SUB/resourcegroups/RG/workspaces/WS/datastores/NAME/paths/PATH``

A SAS token is a secret: it is kept apart from the URL and `str()` never shows it.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, unquote, urlsplit

from tasks.errors import ConfigError

LocationKind = Literal["local", "blob", "azureml"]

ACCEPTED_FORMS = (
    "a local path (/data/train, ./data, file:///data/train)",
    "az://CONTAINER/PREFIX",
    "abfss://CONTAINER@ACCOUNT.dfs.core.windows.net/PREFIX",
    "https://ACCOUNT.blob.core.windows.net/CONTAINER/PREFIX[?SAS]",
    "http://HOST:PORT/ACCOUNT/CONTAINER/PREFIX (Azurite, path-style)",
    "azureml://datastores/NAME/paths/PATH",
    "azureml://subscriptions/SUB/resourcegroups/RG/workspaces/WS/datastores/NAME/paths/PATH",
)

# Azure's own naming rules; checking them here turns a 400 from the service into a clear message.
_CONTAINER_RE = re.compile(r"^(?:\$root|\$web|[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62})$")
_ACCOUNT_RE = re.compile(r"^[a-z0-9]{3,24}$|^devstoreaccount1$")
_SAS_KEYS = {"sig", "sv", "se", "sp", "sr", "st", "spr", "ss", "srt", "skoid", "sktid", "ske", "sks", "skv"}


@dataclass(frozen=True)
class Location:
    """A parsed location. `prefix` never starts or ends with "/"; "" means the container root."""

    kind: LocationKind
    original: str = field(repr=False, compare=False)
    path: Path | None = None
    account: str | None = None
    account_url: str | None = None
    container: str | None = None
    prefix: str = ""
    sas: str | None = field(default=None, repr=False)
    datastore: str | None = None
    subscription: str | None = None
    resource_group: str | None = None
    workspace: str | None = None

    def __str__(self) -> str:
        return self.display

    @property
    def display(self) -> str:
        """A form safe for logs and messages: the SAS is shown as `?<SAS redacted>`."""
        if self.kind == "local":
            return str(self.path)
        if self.kind == "azureml":
            head = "azureml://"
            if self.subscription:
                head += (
                    f"subscriptions/{self.subscription}/resourcegroups/{self.resource_group}/"
                    f"workspaces/{self.workspace}/"
                )
            return f"{head}datastores/{self.datastore}/paths/{self.prefix}"
        base = f"{self.account_url}/{self.container}" if self.account_url else f"az://{self.container}"
        text = f"{base}/{self.prefix}" if self.prefix else base
        return text + ("?<SAS redacted>" if self.sas else "")

    @property
    def is_remote(self) -> bool:
        return self.kind != "local"

    def child(self, *parts: str) -> "Location":
        """This location with path parts appended ("a/b" and "a", "b" are the same)."""
        extra = "/".join(p.strip("/") for p in parts if p and p.strip("/"))
        if not extra:
            return self
        if self.kind == "local":
            return replace(self, path=self.path.joinpath(*extra.split("/")))
        return replace(self, prefix=f"{self.prefix}/{extra}" if self.prefix else extra)

    def with_account(self, account: str, account_url: str) -> "Location":
        """Fill in the account of an `az://` location once the credentials name it."""
        return replace(self, account=account, account_url=account_url.rstrip("/"))


def _bad(text: str, why: str) -> ConfigError:
    forms = "; ".join(ACCEPTED_FORMS)
    return ConfigError(
        f"cannot use location {redact(text)!r}: {why}",
        fix=f"write the location in one of the accepted forms: {forms}",
    )


def redact(text: str) -> str:
    """`text` with any query string (a SAS) replaced, for messages about unparsed input."""
    head, sep, _ = text.partition("?")
    return head + ("?<redacted>" if sep else "")


def _clean_prefix(raw: str, text: str) -> str:
    prefix = unquote(raw).strip("/")
    parts = prefix.split("/") if prefix else []
    if any(p in {"", ".", ".."} for p in parts):
        raise _bad(text, "the path has an empty, '.' or '..' segment")
    return prefix


def _check_container(container: str, text: str) -> str:
    if not _CONTAINER_RE.match(container):
        raise _bad(
            text,
            f"{container!r} is not a valid container name (3-63 lowercase letters, digits and single hyphens)",
        )
    return container


def _check_account(account: str, text: str) -> str:
    if not _ACCOUNT_RE.match(account):
        raise _bad(text, f"{account!r} is not a valid storage account name (3-24 lowercase letters and digits)")
    return account


#: What `TrainRequest` writes for a SAS signature when its parameters are stored (tasks/redact.py).
MASKED_SIGNATURE = "***"


def _split_sas(query: str, text: str) -> str | None:
    if not query:
        return None
    pairs = parse_qsl(query, keep_blank_values=True)
    keys = {k for k, _ in pairs}
    if "sig" not in keys or not keys <= _SAS_KEYS:
        raise _bad(text, "the query string is not a SAS token (expected sv=...&sig=...)")
    if dict(pairs).get("sig") == MASKED_SIGNATURE:
        raise ConfigError(
            f"the SAS signature of {redact(text)} was masked: SAS tokens are never stored in a run's parameters",
            fix="give blob access through storage_credentials (an AzureBlobStorageCredentials block) or "
            "AZURE_STORAGE_CONNECTION_STRING on the worker; a SAS in the URL works only for runs started in-process",
        )
    return query


def _is_path_style_host(host: str) -> bool:
    """Azurite and IP endpoints put the account in the path, not the host name."""
    if host in {"localhost", "host.docker.internal", "azurite"}:
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _parse_http(text: str) -> Location:
    url = urlsplit(text)
    host = (url.hostname or "").lower()
    sas = _split_sas(url.query, text)
    segments = [s for s in url.path.split("/") if s]
    if _is_path_style_host(host):
        if len(segments) < 2:
            raise _bad(text, "a path-style URL needs /ACCOUNT/CONTAINER after the host")
        account = _check_account(segments[0], text)
        account_url = f"{url.scheme}://{url.netloc.rpartition('@')[2]}/{account}"
        rest = segments[1:]
    else:
        match = re.match(r"^([a-z0-9]+)\.blob\.(.+)$", host)
        if not match:
            raise _bad(text, "an https URL must point at ACCOUNT.blob.core.windows.net (or another blob endpoint)")
        account = _check_account(match.group(1), text)
        account_url = f"{url.scheme}://{url.netloc.rpartition('@')[2]}"
        rest = segments
    if not rest:
        raise _bad(text, "the URL names no container")
    container = _check_container(rest[0], text)
    return Location(
        kind="blob",
        original=text,
        account=account,
        account_url=account_url,
        container=container,
        prefix=_clean_prefix("/".join(rest[1:]), text),
        sas=sas,
    )


def _parse_abfs(text: str) -> Location:
    url = urlsplit(text)
    if "@" not in url.netloc:
        raise _bad(text, "abfs URLs are abfss://CONTAINER@ACCOUNT.dfs.core.windows.net/PREFIX")
    container, _, host = url.netloc.partition("@")
    match = re.match(r"^([a-z0-9]+)\.dfs\.(.+)$", host.lower())
    if not match:
        raise _bad(text, "the host of an abfs URL must be ACCOUNT.dfs.core.windows.net")
    account = _check_account(match.group(1), text)
    return Location(
        kind="blob",
        original=text,
        account=account,
        # The blob endpoint serves the same data as the dfs endpoint; we speak the blob API.
        account_url=f"https://{account}.blob.{match.group(2)}",
        container=_check_container(container, text),
        prefix=_clean_prefix(url.path, text),
    )


def _parse_az(text: str) -> Location:
    url = urlsplit(text)
    if url.query:
        raise _bad(text, "az:// locations take no query string; give a SAS with an https URL instead")
    return Location(
        kind="blob",
        original=text,
        container=_check_container(url.netloc, text),
        prefix=_clean_prefix(url.path, text),
    )


_AZUREML_LONG = re.compile(
    r"^subscriptions/(?P<sub>[^/]+)/resourcegroups/(?P<rg>[^/]+)/"
    r"(?:providers/microsoft\.machinelearningservices/)?workspaces/(?P<ws>[^/]+)/(?P<rest>datastores/.*)$",
    re.IGNORECASE,
)
_AZUREML_DATASTORE = re.compile(r"^datastores/(?P<name>[^/]+)(?:/paths(?:/(?P<path>.*))?)?/?$", re.IGNORECASE)


def _parse_azureml(text: str) -> Location:
    body = text[len("azureml://"):]
    fields: dict[str, str | None] = {}
    long = _AZUREML_LONG.match(body)
    if long:
        fields = {"subscription": long["sub"], "resource_group": long["rg"], "workspace": long["ws"]}
        body = long["rest"]
    short = _AZUREML_DATASTORE.match(body)
    if not short:
        if text.startswith("azureml:") and not text.startswith("azureml://"):
            raise _bad(text, "data assets (azureml:NAME:VERSION) are not datastore paths")
        raise _bad(text, "an AzureML URI must contain datastores/NAME[/paths/PATH]")
    return Location(
        kind="azureml",
        original=text,
        datastore=short["name"],
        prefix=_clean_prefix(short["path"] or "", text),
        **fields,
    )


def parse_location(text: str | Path | Location) -> Location:
    """Parse any accepted form into a `Location`; bad input raises `ConfigError` naming the forms.

    >>> loc = parse_location("https://acct.blob.core.windows.net/datasets/kitti?sv=2024&sig=abc")
    >>> loc.kind, loc.account, loc.container, loc.prefix, loc.display
    ('blob', 'acct', 'datasets', 'kitti', 'https://acct.blob.core.windows.net/datasets/kitti?<SAS redacted>')
    """
    if isinstance(text, Location):
        return text
    if isinstance(text, Path):
        return Location(kind="local", original=str(text), path=text.expanduser().absolute())
    raw = text.strip()
    if not raw:
        raise _bad(text, "it is empty")
    if "\x00" in raw:
        raise _bad(raw, "it contains a NUL character")
    scheme = raw.split("://", 1)[0].lower() if "://" in raw else ""
    if scheme in {"http", "https"}:
        return _parse_http(raw)
    if scheme in {"abfs", "abfss"}:
        return _parse_abfs(raw)
    if scheme in {"az", "azure"}:
        return _parse_az(raw)
    if scheme == "azureml" or raw.lower().startswith("azureml:"):
        return _parse_azureml(raw)
    if scheme == "file":
        return Location(kind="local", original=raw, path=Path(unquote(urlsplit(raw).path)).absolute())
    if scheme:
        raise _bad(raw, f"the scheme {scheme!r} is not supported")
    return Location(kind="local", original=raw, path=Path(raw).expanduser().absolute())
