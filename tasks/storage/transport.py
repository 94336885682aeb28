"""The SDK's `RequestsTransport`, with body-less requests sent straight to urllib3's connection pool.

For each request, `requests` builds a `Request`, prepares it (cookies, hooks, auth, header
merging, URL re-parsing), resolves its environment settings, picks the adapter, builds timeout
objects and finally calls urllib3's pool; then it wraps the answer in a second response object.
A thread-CPU profile of a 1,000-blob sync down put that layer at ~30 % of the client's CPU, all
of it under the GIL (docs/benchmarks.md). For a GET/HEAD/DELETE without a body and without a
proxy this transport does what `requests` would end up doing, with the connection pool (and its
TLS settings: CA bundle, client certificate) taken from the same `requests` adapter:
`pool.urlopen(method, path, headers=session headers + request headers, redirect=False,
retries=none, preload_content=False, decode_content=False)`. Everything else — uploads, any
request when a proxy is configured — goes through `requests` unchanged.

Errors are raised as the SDK's own transport raises them (`ServiceRequestError` when no
connection could be made, `ServiceResponseError` when the answer broke, the `Timeout` variants),
with the urllib3 error as their cause, so the retry policy (tasks.storage.retry) and the error
mapping (tasks.storage.azure_errors) see the same exceptions as before.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import requests
from azure.core.exceptions import (
    ServiceRequestError,
    ServiceRequestTimeoutError,
    ServiceResponseError,
    ServiceResponseTimeoutError,
)
from azure.core.pipeline.transport import RequestsTransport

try:  # a private module of azure-core: if a release moves it, every request goes through `requests`
    from azure.core.rest._requests_basic import RestRequestsTransportResponse
except ImportError:  # pragma: no cover - depends on the installed azure-core
    RestRequestsTransportResponse = None
from requests.utils import get_encoding_from_headers
from urllib3.exceptions import ConnectTimeoutError, HTTPError, NewConnectionError, ProtocolError, ReadTimeoutError
from urllib3.util import Timeout

_DIRECT_METHODS = frozenset({"GET", "HEAD", "DELETE"})
#: Options of `send` this transport understands; any other one sends the request through `requests`.
_KNOWN_OPTIONS = frozenset({"stream", "connection_timeout", "read_timeout"})


class DirectTransport(RequestsTransport):
    """`RequestsTransport` that skips the `requests` layer for body-less requests (see the module doc).

    >>> import requests
    >>> DirectTransport(session=requests.Session()).connection_config.data_block_size
    4096
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._pools: dict[tuple[str, str], object] = {}

    def send(self, request, *, proxies=None, **kwargs):  # noqa: D102 - RequestsTransport.send
        if (
            RestRequestsTransportResponse is None
            or proxies
            or self.session is None
            or self.session.proxies
            or request.method not in _DIRECT_METHODS
            or not hasattr(request, "content")  # a legacy (non-rest) request
            or request.content is not None
            or not _KNOWN_OPTIONS.issuperset(kwargs)
        ):
            return super().send(request, proxies=proxies, **kwargs)
        self.open()
        url = request.url
        config = self.connection_config
        parts = urlsplit(url)
        headers = dict(request.headers)
        for key, value in self.session.headers.items():  # requests' defaults, unless the request set them
            if key not in request.headers:  # case-insensitive: the SDK's header dict
                headers[key] = value
        try:
            answer = self._pool(parts.scheme, parts.netloc, url).urlopen(
                request.method,
                (parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
                body=None,
                headers=headers,
                redirect=False,
                assert_same_host=False,
                preload_content=False,
                decode_content=False,
                retries=False,  # the SDK's retry policy decides
                timeout=Timeout(connect=kwargs.get("connection_timeout", config.timeout),
                                read=kwargs.get("read_timeout", config.read_timeout)),
            )
        except HTTPError as exc:
            raise _azure_error(exc) from exc
        except OSError as exc:
            raise ServiceRequestError(exc, error=exc) from exc
        answer.enforce_content_length = True
        inner = requests.Response()
        inner.status_code, inner.headers, inner.raw, inner.reason, inner.url = (
            answer.status, answer.headers, answer, answer.reason, url)
        inner.encoding = get_encoding_from_headers(answer.headers)
        response = RestRequestsTransportResponse(request=request, internal_response=inner,
                                                 block_size=config.data_block_size)
        if not kwargs.get("stream"):
            try:
                response.read()
            finally:
                response.close()
        return response

    def _pool(self, scheme: str, netloc: str, url: str):
        """The connection pool `requests` uses for this endpoint, with its TLS settings; kept while open."""
        pool = self._pools.get((scheme, netloc))
        if pool is None or pool.pool is None:  # a pool the pool manager closed has .pool None
            config = self.connection_config
            adapter = self.session.get_adapter(url)
            prepared = requests.PreparedRequest()
            prepared.url = url  # all the adapter reads to pick the pool and its TLS settings
            pool = adapter.get_connection_with_tls_context(prepared, config.verify, proxies=None, cert=config.cert)
            adapter.cert_verify(pool, url, config.verify, config.cert)
            self._pools[(scheme, netloc)] = pool
        return pool


def _azure_error(exc: HTTPError) -> Exception:
    """The azure-core exception the SDK's RequestsTransport raises for this urllib3 error."""
    if isinstance(exc, NewConnectionError):  # includes NameResolutionError
        return ServiceRequestError(exc, error=exc)
    if isinstance(exc, ConnectTimeoutError):
        return ServiceRequestTimeoutError(exc, error=exc)
    if isinstance(exc, ReadTimeoutError):
        return ServiceResponseTimeoutError(exc, error=exc)
    if isinstance(exc, ProtocolError):
        return ServiceResponseError(exc, error=exc)
    return ServiceRequestError(exc, error=exc)
