"""A local stand-in for the rest of the internet, to see where a storage credential travels.

- `TokenEndpoint`: a managed-identity endpoint (App Service style: IDENTITY_ENDPOINT and
  IDENTITY_HEADER), so the real `DefaultAzureCredential` obtains a (fake) bearer token offline;
- `TlsRecorder`: an HTTPS server that records every request (host, path, Authorization);
- `InterceptingProxy`: an HTTPS proxy (HTTPS_PROXY) that terminates TLS for any host name with a
  certificate from a test CA, so a request to `ACCOUNT.blob.<any domain>` or to the real
  `ACCOUNT.blob.core.windows.net` lands here instead of the internet, and its headers are recorded;
  the same server is the HTTP_PROXY, recording plain-http requests (a SAS in the URL, a signature)
  as anyone on the way would see them.

A process given `env()` trusts the test CA (REQUESTS_CA_BUNDLE) and reaches every non-loopback
host through the proxy; nothing leaves the machine.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path

FAKE_TOKEN = "fake-bearer-token-for-storage-azure-com"


@dataclass
class Seen:
    """One request that arrived: which host it was for, what it asked, its Authorization header."""

    host: str
    request: str
    authorization: str | None


def _certificates(folder: Path) -> tuple[Path, Path, Path]:
    """(CA certificate, leaf certificate, leaf key) valid for any host name and 127.0.0.1."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def build(subject, issuer, key, signer, *, ca: bool, names=()):
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(list(names)), critical=False)
        return builder.sign(signer, hashes.SHA256())

    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "taoflow test CA")])
    ca = build(ca_name, ca_name, ca_key, ca_key, ca=True)
    hosts = ["localhost", "*.blob.core.windows.net", "*.blob.evil.example", "*.blob.core.windows.net.evil.example",
             "evil.example", "*.evil.example"]
    names = [x509.DNSName(h) for h in hosts] + [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    leaf = build(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "storage")]), ca_name, leaf_key, ca_key,
                 ca=False, names=names)
    pem = serialization.Encoding.PEM
    paths = folder / "ca.pem", folder / "leaf.pem", folder / "leaf.key"
    paths[0].write_bytes(ca.public_bytes(pem))
    paths[1].write_bytes(leaf.public_bytes(pem))
    paths[2].write_bytes(leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return paths


def _answer_403(stream) -> None:
    body = b'<?xml version="1.0" encoding="utf-8"?><Error><Code>AuthorizationFailure</Code></Error>'
    stream.sendall(b"HTTP/1.1 403 Forbidden\r\nx-ms-error-code: AuthorizationFailure\r\nContent-Type: application/xml"
                   b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)


def _read_head(stream) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data and len(data) < 65536:
        chunk = stream.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def _record(head: bytes, host: str, into: list[Seen]) -> None:
    lines = head.decode("latin-1").split("\r\n")
    auth = next((line.split(":", 1)[1].strip() for line in lines if line.lower().startswith("authorization:")), None)
    into.append(Seen(host, lines[0], auth))


class FakeInternet:
    """The three servers, started together; `env()` is the environment of a process that uses them."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        # What the servers saw: identity-token requests, requests to the TLS endpoint (directly or
        # through the proxy), and the CONNECT targets the proxy was asked for.
        self.tokens: list[Seen] = []
        self.direct: list[Seen] = []
        self.proxied: list[Seen] = []
        self.plain: list[Seen] = []
        self.connects: list[str] = []

    def __enter__(self) -> "FakeInternet":
        self.ca, cert, key = _certificates(self.folder)
        self.tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.tls.load_cert_chain(cert, key)
        self._servers = [self._token_server(), self._tls_server(), self._proxy_server()]
        return self

    def __exit__(self, *exc) -> None:
        for server in self._servers:
            server.close()

    def _listen(self, serve) -> socket.socket:
        sock = socket.create_server(("127.0.0.1", 0))
        sock.settimeout(0.2)

        def loop():
            while sock.fileno() != -1:
                try:
                    conn, _ = sock.accept()
                except (socket.timeout, OSError):
                    continue
                threading.Thread(target=self._safely, args=(serve, conn), daemon=True).start()

        threading.Thread(target=loop, daemon=True).start()
        return sock

    @staticmethod
    def _safely(serve, conn) -> None:
        try:
            conn.settimeout(10)
            serve(conn)
        except (OSError, ssl.SSLError):
            pass
        finally:
            conn.close()

    def _token_server(self) -> socket.socket:
        def serve(conn):
            head = _read_head(conn)
            _record(head, "identity endpoint", self.tokens)
            body = json.dumps({"access_token": FAKE_TOKEN, "expires_on": str(int(time.time()) + 3600),
                               "resource": "https://storage.azure.com", "token_type": "Bearer"}).encode()
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                         + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)

        sock = self._listen(serve)
        self.token_url = f"http://127.0.0.1:{sock.getsockname()[1]}/msi/token"
        return sock

    def _tls_server(self) -> socket.socket:
        def serve(conn):
            with self.tls.wrap_socket(conn, server_side=True) as stream:
                _record(_read_head(stream), f"127.0.0.1:{self.tls_port}", self.direct)
                _answer_403(stream)

        sock = self._listen(serve)
        self.tls_port = sock.getsockname()[1]
        return sock

    def _proxy_server(self) -> socket.socket:
        def serve(conn):
            raw = _read_head(conn)
            head = raw.decode("latin-1")
            if not head.startswith("CONNECT "):  # a plain-http request, in the clear
                _record(raw, head.split(" ")[1] if " " in head else "?", self.plain)
                _answer_403(conn)
                return
            target = head.split(" ")[1]
            self.connects.append(target)
            conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            with self.tls.wrap_socket(conn, server_side=True) as stream:
                _record(_read_head(stream), target, self.proxied)
                _answer_403(stream)

        sock = self._listen(serve)
        self.proxy_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        return sock

    def env(self, base: dict[str, str]) -> dict[str, str]:
        """`base` (e.g. os.environ) without Azure settings, with the identity, proxy and CA of this fake."""
        env = {k: v for k, v in base.items() if not k.startswith(("AZURE_", "IDENTITY_", "MSI_"))
               and k.upper() not in {"HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "ALL_PROXY"}}
        env.update(IDENTITY_ENDPOINT=self.token_url, IDENTITY_HEADER="fake-identity-header",
                   HTTPS_PROXY=self.proxy_url, HTTP_PROXY=self.proxy_url, NO_PROXY="127.0.0.1,localhost",
                   REQUESTS_CA_BUNDLE=str(self.ca))
        return env

    def credentials_seen(self) -> list[str]:
        """Every token request and every Authorization header that reached any of the servers."""
        return ([f"token request {s.request}" for s in self.tokens]
                + [f"{s.authorization[:12]}... to {s.host}" for s in self.direct + self.proxied if s.authorization]
                + [f"in the clear: {s.request[:60]}..." for s in self.plain])
