"""Azure SDK exceptions turned into taoflow's storage errors.

The split decides the retry policy: connection drops, time-outs, 408/429/5xx are
`TransientStorageError` (a retry can help); 401/403 and 404 are final and say which account,
container and credential were involved, so the user knows what to fix.
"""

from __future__ import annotations

import errno
import socket
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from tasks.errors import (
    StorageAuthError,
    StorageError,
    StorageNotFoundError,
    StorageUnreachableError,
    TransientStorageError,
)

_TRANSIENT_STATUS = {408, 429, 500, 502, 503, 504}


@dataclass(frozen=True)
class Target:
    """What an operation touched, for error messages (never holds a secret)."""

    account: str | None
    container: str | None
    credential: str
    blob: str | None = None
    endpoint: str | None = None

    @property
    def where(self) -> str:
        text = f"account {self.account or '?'} container {self.container or '?'}"
        return f"{text} blob {self.blob}" if self.blob else text


def _chain(exc: BaseException):
    """`exc` and every exception it wraps (azure-core, requests and urllib3 each wrap the last)."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        item = todo.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        nested = (getattr(item, "inner_exception", None), getattr(item, "reason", None), item.__cause__, item.__context__)
        todo.extend(x for x in (*nested, *getattr(item, "args", ())) if isinstance(x, BaseException))


#: getaddrinfo's answer for a name that does not exist (as opposed to EAI_AGAIN, a resolver hiccup).
_NO_SUCH_NAME = {getattr(socket, "EAI_NONAME", -2), getattr(socket, "EAI_NODATA", -5)}


def unreachable_reason(exc: BaseException) -> tuple[str, bool] | None:
    """(why, permanent) when `exc` means no connection was made to the endpoint, else None.

    `permanent` is true for a host name that does not exist: waiting does not create it.

    >>> unreachable_reason(ConnectionRefusedError(111, "Connection refused"))
    ('the connection was refused (nothing listens there)', False)
    """
    for item in _chain(exc):
        if isinstance(item, socket.gaierror):
            return "its host name does not resolve", item.errno in _NO_SUCH_NAME
        if type(item).__name__ == "NameResolutionError":
            continue  # urllib3's wrapper; the gaierror it wraps says which kind
        if isinstance(item, ConnectionRefusedError):
            return "the connection was refused (nothing listens there)", False
        if type(item).__name__ in {"ConnectTimeoutError", "ConnectTimeout"} or (
            isinstance(item, OSError) and item.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH)
        ):
            return "the connection attempt timed out or the network is unreachable", False
    return None


def map_azure_error(exc: BaseException, target: Target, doing: str) -> StorageError:
    """The storage error for one SDK exception (also for plain connection errors)."""
    from azure.core import exceptions as az

    unreachable = unreachable_reason(exc) if isinstance(exc, (az.ServiceRequestError, OSError)) else None
    if unreachable is not None:
        tries = getattr(exc, "taoflow_attempts", None)
        spent = f" ({tries} attempt(s) in {exc.taoflow_seconds:.1f} s)" if tries else ""
        return StorageUnreachableError(
            f"{doing}: cannot reach the storage endpoint {target.endpoint or '?'}: {unreachable[0]}{spent}",
            where=target.where,
            fix="check the account URL / connection string endpoint and that this machine can reach it "
            "(DNS, firewall, proxy, private endpoint); for Azurite, start it first",
        )
    status = getattr(exc, "status_code", None)
    code = getattr(exc, "error_code", None)
    detail = f"{type(exc).__name__}" + (f" {status}" if status else "") + (f" {code}" if code else "")
    if status in (401, 403) or isinstance(exc, az.ClientAuthenticationError):
        return StorageAuthError(
            f"{doing}: access refused ({detail}) using {target.credential}",
            where=target.where,
            fix=(
                "check that this credential is valid and grants read/write on the container "
                "(role 'Storage Blob Data Contributor', a SAS with rl/rwdl permissions, or the right account key)"
            ),
        )
    if status == 404 or isinstance(exc, az.ResourceNotFoundError):
        what = "container" if code == "ContainerNotFound" else "blob or container"
        return StorageNotFoundError(
            f"{doing}: the {what} does not exist ({detail})",
            where=target.where,
            fix="check the account, container and path of the location",
        )
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return local_write_error(exc, getattr(exc, "filename", None) or target.where, doing)
    if (
        status in _TRANSIENT_STATUS
        or status == 412  # the blob changed while we read it: list again and retry
        or isinstance(exc, (az.ServiceRequestError, az.ServiceResponseError, ConnectionError, TimeoutError, OSError))
    ):
        return TransientStorageError(
            f"{doing}: the storage service did not answer properly ({detail}: {_first_line(exc)})",
            where=target.where,
            fix="this is usually temporary; the step is retried automatically, or run it again",
        )
    return StorageError(f"{doing}: {detail}: {_first_line(exc)}", where=target.where)


def local_write_error(exc: OSError, where: str, doing: str) -> StorageError:
    """A local write that failed: a full disk said as such, anything else with the OS's reason.

    >>> local_write_error(OSError(28, "No space left on device"), "/cache/x", "writing x").what
    'writing x: no space left on the local disk ([Errno 28] No space left on device)'
    """
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        # A full disk stays full for the minute the retries would take: say so at once.
        return StorageError(
            f"{doing}: no space left on the local disk ({_first_line(exc)})",
            where=where,
            fix="free space where taoflow stages data (TAOFLOW_HOME, default ~/.cache/taoflow) or point "
            "TAOFLOW_HOME at a larger disk; a re-run fetches only what is missing",
        )
    return StorageError(f"{doing}: {exc.strerror or _first_line(exc)}", where=where,
                        fix="check the free space and the permissions of that folder")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


@contextmanager
def azure_errors(target: Target, doing: str) -> Iterator[None]:
    """Run a block of SDK calls and re-raise anything it throws as a storage error."""
    from azure.core.exceptions import AzureError

    try:
        yield
    except StorageError:
        raise
    except (AzureError, OSError) as exc:
        raise map_azure_error(exc, target, doing) from exc
