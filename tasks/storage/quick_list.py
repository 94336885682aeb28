"""List Blobs with the standard library alone, so that an unchanged re-sync never imports the Azure SDK.

An unchanged `taoflow sync down` is one listing compared with the local manifest. In a fresh CLI
process, importing azure-storage-blob took ~0.3 s of CPU here, more than everything else that
re-sync does (docs/benchmarks.md). `QuickLister` sends the listing -- `GET <container>?restype=
container&comp=list`, page by page -- with `http.client`, authorised as the SDK authorises it:
with the location's SAS, or with Shared Key from the connection string's account key (the
string-to-sign of Azure's "Authorize with Shared Key" for this request, as azure-storage-blob's
`SharedKeyCredentialPolicy` builds it; a test compares the two). The pages are parsed by the SDK
path's own code (`blobio.parse_page`), so both paths see the same entries.

It is a fast path and nothing more: any answer but a clean 200 page (an error status, a
redirect, a broken connection, a page that does not parse) makes `list` return None, and the
caller lists again through the SDK, whose retries and error messages then apply unchanged. It is
not used for token credentials (an identity needs azure-identity anyway), nor when a proxy is
set in the environment, nor once the SDK is loaded in the process (a flow worker): there the SDK
path costs nothing extra. It talks only to the endpoint the store was opened for, which
tasks.storage.endpoints checked before any credential was used; over https it verifies the
server with the CA bundle `requests` would use (REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE, else
certifi's), and it never follows a redirect.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import os
import sys
from email.utils import formatdate
from urllib.parse import quote, urlsplit

from tasks.storage.blobio import list_params, parse_page

#: The REST version the installed azure-storage-blob sends (a test keeps the two equal).
API_VERSION = "2026-10-06"
#: A fast path should fail fast: after this, the SDK path (with its own budget) takes over.
CONNECT_TIMEOUT = 3.0
READ_TIMEOUT = 60.0


class QuickLister:
    """Lists one container with SAS or Shared Key authorisation over `http.client`.

    >>> lister = QuickLister("http://127.0.0.1:10000/devstoreaccount1", "data", account="devstoreaccount1",
    ...                      key=base64.b64encode(b"k").decode())
    >>> text = lister.string_to_sign({"restype": "container", "comp": "list"}, "Mon, 07 Dec 2026 10:00:00 GMT")
    >>> text.split("\\n")[11:]  # doctest: +NORMALIZE_WHITESPACE
    ['', 'x-ms-date:Mon, 07 Dec 2026 10:00:00 GMT', 'x-ms-version:2026-10-06',
     '/devstoreaccount1/devstoreaccount1/data', 'comp:list', 'restype:container']
    """

    def __init__(self, account_url: str, container: str, *, account: str | None = None, key: str | None = None,
                 sas: str | None = None) -> None:
        parts = urlsplit(account_url)
        self.scheme, self.host, self.port = parts.scheme, parts.hostname or "", parts.port
        self.path = f"{parts.path.rstrip('/')}/{container}"
        self.account, self.key, self.sas = account, key, sas

    @classmethod
    def for_credentials(cls, account_url: str | None, container: str | None, creds) -> "QuickLister | None":
        """The lister for these resolved credentials (tasks.storage.credentials), or None when the
        fast path does not apply (see the module doc)."""
        from tasks.storage.credentials import connection_settings

        if not account_url or not container or "azure.storage.blob" in sys.modules or _proxied(account_url):
            return None
        if creds.connection_string:
            settings = connection_settings(creds.connection_string)
            if settings.get("sharedaccesssignature"):
                return cls(account_url, container, sas=settings["sharedaccesssignature"].lstrip("?"))
            if settings.get("accountkey") and settings.get("accountname"):
                return cls(account_url, container, account=settings["accountname"], key=settings["accountkey"])
            return None
        if isinstance(creds.credential, str) and creds.credential:  # a SAS
            return cls(account_url, container, sas=creds.credential.lstrip("?"))
        return None

    def string_to_sign(self, params: dict[str, str], date: str) -> str:
        """Shared Key's string-to-sign for this GET: no standard header set, two x-ms- headers."""
        query = "".join(f"\n{name.lower()}:{value}" for name, value in sorted(params.items()))
        return f"GET\n{chr(10) * 11}x-ms-date:{date}\nx-ms-version:{API_VERSION}\n/{self.account}{self.path}{query}"

    def authorization(self, params: dict[str, str], date: str) -> str:
        """The Shared Key `Authorization` header of this GET, sent at `date` (its x-ms-date)."""
        digest = hmac.new(base64.b64decode(self.key), self.string_to_sign(params, date).encode(), hashlib.sha256)
        return f"SharedKey {self.account}:{base64.b64encode(digest.digest()).decode()}"

    def list(self, prefix: str) -> list[tuple[str, int, str, str | None]] | None:
        """(full name, size, etag, MD5 hex or None) of every blob under `prefix`, or None when
        anything went other than plainly well (then list through the SDK)."""
        try:
            connection = self._connect()
        except Exception:  # noqa: BLE001 - a fast path: the SDK path reports the failure properly
            return None
        found, marker = [], None
        try:
            while True:
                page = self._page(connection, list_params(prefix, marker))
                if page is None:
                    return None
                blobs, marker = parse_page(page)
                found.extend(blobs)
                if not marker:
                    return found
        except Exception:  # noqa: BLE001 - as above
            return None
        finally:
            connection.close()

    def _page(self, connection: http.client.HTTPConnection, params: dict[str, str]) -> bytes | None:
        query = "&".join(f"{name}={quote(value, safe='')}" for name, value in params.items())
        headers = {"Accept": "application/xml", "x-ms-version": API_VERSION}
        if self.sas:
            query += f"&{self.sas}"
        else:
            date = formatdate(usegmt=True)
            headers.update({"x-ms-date": date, "Authorization": self.authorization(params, date)})
        connection.request("GET", f"{quote(self.path)}?{query}", headers=headers)
        response = connection.getresponse()
        body = response.read()
        return body if response.status == 200 else None

    def _connect(self) -> http.client.HTTPConnection:
        if self.scheme == "http":
            connection = http.client.HTTPConnection(self.host, self.port, timeout=CONNECT_TIMEOUT)
        elif self.scheme == "https":
            import ssl

            bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
            if not bundle:
                import certifi

                bundle = certifi.where()
            context = (ssl.create_default_context(capath=bundle) if os.path.isdir(bundle)
                       else ssl.create_default_context(cafile=bundle))
            connection = http.client.HTTPSConnection(self.host, self.port, timeout=CONNECT_TIMEOUT, context=context)
        else:
            raise ValueError(self.scheme)
        connection.connect()
        connection.sock.settimeout(READ_TIMEOUT)
        return connection


def _proxied(url: str) -> bool:
    """True when the environment names a proxy for `url` (then only the SDK's transport is used)."""
    from urllib.request import getproxies_environment, proxy_bypass_environment

    proxies = getproxies_environment()
    scheme = urlsplit(url).scheme
    if not (proxies.get(scheme) or proxies.get("all")):
        return False
    return not proxy_bypass_environment(urlsplit(url).hostname or "", proxies)
