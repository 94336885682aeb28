"""A reverse proxy in front of Azurite that lets a fixed number of blob uploads through and holds the
rest: a client killed while one is held is killed mid-upload, with exactly that many blobs uploaded,
however fast or loaded the machine is (waiting for "half uploaded" and then killing raced with an
upload that finished in between).

Every request is forwarded as it came (the SharedKey signature covers the path, not the host), so the
client only needs a connection string whose BlobEndpoint is the gate.
"""

from __future__ import annotations

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from tests.fixtures.services import AZURITE_ACCOUNT, AZURITE_KEY


class UploadGate:
    """Forward to Azurite on `target_port`; hold every blob upload under `prefix` after the first `allow`."""

    def __init__(self, target_port: int, prefix: str, allow: int, holds: frozenset[str] = frozenset()) -> None:
        self.target_port, self.prefix, self.allow = target_port, prefix, allow
        self.uploads = 0
        self.holding = threading.Event()
        self._release = threading.Event()
        self._lock = threading.Lock()
        gate = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if gate._held(self.command, self.path):
                    gate.holding.set()
                    gate._release.wait()
                    self.close_connection = True
                    return
                upstream = http.client.HTTPConnection("127.0.0.1", gate.target_port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                headers["Host"] = f"127.0.0.1:{gate.target_port}"
                upstream.request(self.command, self.path, body=body, headers=headers)
                answer = upstream.getresponse()
                data = answer.read()
                self.send_response(answer.status, answer.reason)
                for name, value in answer.getheaders():
                    if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                upstream.close()

            do_GET = do_PUT = do_HEAD = do_DELETE = do_POST = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]

    def _held(self, method: str, path: str) -> bool:
        """A Put Blob of content under the prefix, beyond the ones allowed through."""
        parts = urlsplit(path)
        if method != "PUT" or parts.query or f"/{self.prefix}/" not in parts.path or parts.path.endswith(".json"):
            return False
        with self._lock:
            self.uploads += 1
            return self.uploads > self.allow

    @property
    def connection_string(self) -> str:
        return (f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
                f"BlobEndpoint=http://127.0.0.1:{self.port}/{AZURITE_ACCOUNT};")

    def location(self, container: str, prefix: str) -> str:
        return f"http://127.0.0.1:{self.port}/{AZURITE_ACCOUNT}/{container}/{prefix}"

    def __enter__(self) -> "UploadGate":
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()
