"""The two Blob REST calls a sync makes per file or page, sent on the SDK's own pipeline.

Authentication, the retry policy (tasks.storage.retry), the request log and the endpoint the
client was opened for are the SDK's, unchanged: the request goes through the container client's
pipeline. What is skipped is the SDK's per-call object model, which cost more CPU than the
transfer itself for the small files of a dataset (measured with a thread-CPU profile of a
1,000-blob sync, see docs/benchmarks.md):

- `download_blob` builds a `BlobClient` (its own generated client and configuration), a
  generated operation, deserializes ~50 response headers into models and a downloader object:
  about a quarter of the client's CPU per small blob, all of it under the GIL. The downloader
  also holds a whole blob of up to 32 MB in memory before handing it out. `get_blob` sends one
  GET and streams the body into the file.
- listing: the SDK's generic XML deserializer costs ~0.25 ms per blob; `list_pages` reads the
  raw page with ElementTree (and asks for it as a stream, so the pipeline does not parse it too).

Guarantees kept: the GET is conditional on the listed etag (`If-Match`: a blob replaced since the
listing answers 412, a transient error, instead of mixing versions); the body is hashed while it
is written and its length checked; a body cut mid-way is resumed from the byte it stopped at
(`x-ms-range`, same etag), at most `BODY_ATTEMPTS` times, as the SDK's downloader retried it.
"""

from __future__ import annotations

import base64
import hashlib
import time
from typing import BinaryIO, Iterator
from urllib.parse import quote, unquote

from tasks.errors import TransientStorageError

#: Attempts at reading one blob's body when the connection breaks mid-way (the SDK's downloader made 3).
BODY_ATTEMPTS = 3
#: Bytes read from the socket per step: few Python iterations per file, bounded memory per transfer.
#: 256 KB (the SDK's own block size) rather than 1 MB: buffers this size are recycled by malloc
#: instead of being mapped fresh, which halved the page faults of a large-file sync (46k -> 18k per 550 MB).
READ_CHUNK = 256 * 1024
#: Blobs per List Blobs page (the service's maximum).
LIST_PAGE = 5000


def blob_url(container, name: str) -> str:
    """The URL of blob `name` (its full name in the container), with the container URL's SAS if any.

    >>> class C: url = "https://a.blob.core.windows.net/c?sv=1&sig=x"
    >>> blob_url(C, "images/a b.png")
    'https://a.blob.core.windows.net/c/images/a%20b.png?sv=1&sig=x'
    """
    base, sep, query = container.url.partition("?")
    return f"{base}/{quote(name, safe='~/')}{sep}{query}"


def _send(container, method: str, url: str, headers: dict[str, str], params: dict[str, str] | None = None):
    """One request on the container client's pipeline, its body left unread (stream=True)."""
    from azure.core.exceptions import HttpResponseError
    from azure.core.rest import HttpRequest

    request = HttpRequest(method, url, params=params, headers={"x-ms-version": container.api_version, **headers})
    response = container._client._send_request(request, stream=True)  # noqa: SLF001 - see the module doc
    if response.status_code >= 300:
        response.read()  # the error text is in the body
        response.close()
        error = HttpResponseError(response=response)
        error.error_code = response.headers.get("x-ms-error-code")
        raise error
    return response


def list_params(prefix: str, marker: str | None) -> dict[str, str]:
    """The query of one List Blobs page (the SDK path and tasks.storage.quick_list send the same)."""
    params = {"restype": "container", "comp": "list", "maxresults": str(LIST_PAGE)}
    if prefix:
        params["prefix"] = prefix
    if marker:
        params["marker"] = marker
    return params


def parse_page(data: bytes) -> tuple[list[tuple[str, int, str, str | None]], str | None]:
    """(the blobs of one List Blobs page as (full name, size, etag, MD5 hex or None), the next
    page's marker or None)."""
    import xml.etree.ElementTree as ET

    root = ET.fromstring(data)
    blobs = []
    for blob in root.iter("Blob"):
        name_node = blob.find("Name")
        name = unquote(name_node.text or "") if name_node.get("Encoded") == "true" else name_node.text or ""
        props = blob.find("Properties")
        md5 = props.findtext("Content-MD5")
        blobs.append((name, int(props.findtext("Content-Length") or 0), props.findtext("Etag"),
                      base64.b64decode(md5).hex() if md5 else None))
    return blobs, root.findtext("NextMarker") or None


def list_pages(container, prefix: str) -> Iterator[tuple[str, int, str, str | None]]:
    """(full name, size, etag, MD5 hex or None) of every blob under `prefix`, page by page."""
    marker = None
    while True:
        # azure-core joins the values as given ("assumed already quoted"): a prefix or marker with
        # '+', '&', '=' or '#' would otherwise change the query and fail the signature.
        params = {name: quote(value, safe="") for name, value in list_params(prefix, marker).items()}
        response = _send(container, "GET", container.url, {"Accept": "application/xml"}, params)
        try:
            blobs, marker = parse_page(response.read())
        finally:
            response.close()
        yield from blobs
        if not marker:
            return


def get_blob(container, name: str, etag: str, size: int, out: BinaryIO, *, where: str, start: int = 0,
             length: int | None = None, hashed: bool = True) -> str | None:
    """Stream blob `name` (version `etag`, `size` bytes) into `out`; the MD5 (hex) of what was written
    (None when not `hashed`).

    With `start`/`length`, only those bytes (one ranged GET: a dataset image's header, or one
    range of a large blob, tasks.storage.ranged); `length` > 0.
    A body cut mid-way is resumed where it stopped (same etag); the bytes are neither decoded
    nor decompressed, so the file is the blob exactly as stored (and matches its Content-MD5).
    A local write error (a full disk) is raised as it is, never retried.
    """
    length = size - start if length is None else length
    ranged = start > 0 or length < size
    url = blob_url(container, name)
    digest = hashlib.md5(usedforsecurity=False) if hashed else None
    done = 0
    for attempt in range(1, BODY_ATTEMPTS + 1):
        headers = {"If-Match": etag}
        if ranged:
            headers["x-ms-range"] = f"bytes={start + done}-{start + length - 1}"
        elif done:
            headers["x-ms-range"] = f"bytes={done}-"
        response = _send(container, "GET", url, headers)
        try:
            if (done or ranged) and response.status_code != 206:
                raise TransientStorageError(f"{name}: the storage ignored the range asked for", where=where,
                                            fix="run again")
            cut = _stream(response.internal_response.raw, digest, out, length - done)
        finally:
            response.close()
        done += cut[0]
        if cut[1] is None:
            break
        if attempt == BODY_ATTEMPTS:
            raise TransientStorageError(
                f"{name}: the connection broke {attempt} times while the blob was read ({type(cut[1]).__name__})",
                where=where,
                fix="this is usually temporary; the step is retried automatically, or run it again",
            ) from cut[1]
        time.sleep(0.5 * attempt)
    if done != length:
        raise TransientStorageError(f"{name} arrived with {done} bytes, the listing said {length}", where=where,
                                    fix="the blob is probably being rewritten; run again once it is complete")
    return digest.hexdigest() if digest is not None else None


def _stream(raw, digest, out: BinaryIO, limit: int) -> tuple[int, Exception | None]:
    """Copy urllib3 response `raw` to `out` (hashing), at most `limit` bytes and one more (a body
    longer than announced fails the length check instead of being read to its end): (bytes
    copied, the read error that cut it or None)."""
    from urllib3.exceptions import HTTPError

    copied = 0
    while copied <= limit:
        try:
            chunk = raw.read(min(READ_CHUNK, limit + 1 - copied), decode_content=False)
        except (HTTPError, OSError) as exc:  # reading only: a write error below is not a network fault
            return copied, exc
        if not chunk:
            return copied, None
        if digest is not None:
            digest.update(chunk)
        out.write(chunk)
        copied += len(chunk)
    return copied, None
