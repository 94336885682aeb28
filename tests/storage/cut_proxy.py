"""A TCP proxy in front of Azurite that breaks the answer to one blob's GET part-way, on demand.

Every request line passing through is recorded with its `x-ms-range` header (and its `If-Match`
in `conditions`). While `cuts` is positive, a connection that asks for `target` forwards only
`cut_after` bytes of the answer and is then closed by the proxy, as a dropped connection does
mid-download; each cut uses one. `before_forward(line)`, when set, runs for every request before
it is passed on (a test changes the blob between two requests with it). With `stall_after` set,
an answer to `target` stops after that many bytes: `stalled` is set and the answer waits for
`release` (a test kills the client while it is certainly mid-download).
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field
from typing import Callable


@dataclass
class CutProxy:
    upstream_port: int
    target: str = ""
    cut_after: int = 1 << 20
    cuts: int = 0
    seen: list[tuple[str, str | None]] = field(default_factory=list)
    """(request line, x-ms-range or None) of every request, in order."""
    conditions: list[str | None] = field(default_factory=list)
    """The If-Match header of every request, in the same order."""
    before_forward: Callable[[str], None] | None = None
    stall_after: int | None = None
    stalled: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._server.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            state = {"cut": False, "sent": 0}
            threading.Thread(target=self._requests, args=(client, upstream, state), daemon=True).start()
            threading.Thread(target=self._answers, args=(upstream, client, state), daemon=True).start()

    def _requests(self, source: socket.socket, sink: socket.socket, state: dict) -> None:
        while data := _recv(source):
            for head in data.split(b"\r\n\r\n"):
                lines = head.decode("latin-1").split("\r\n")
                if not lines[0].startswith(("GET ", "PUT ", "HEAD ", "DELETE ")):
                    continue
                headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
                with self._lock:
                    self.seen.append((lines[0], headers.get("x-ms-range")))
                    self.conditions.append(headers.get("if-match"))
                    if self.target and self.target in lines[0] and self.cuts > 0:
                        self.cuts -= 1
                        state.update(cut=True, sent=0)
                    if self.target and self.target in lines[0] and self.stall_after is not None:
                        state.update(stall=True, sent=0)
                if self.before_forward is not None:
                    self.before_forward(lines[0])
            try:
                sink.sendall(data)
            except OSError:
                break
        _close(source, sink)

    def _answers(self, source: socket.socket, sink: socket.socket, state: dict) -> None:
        while data := _recv(source):
            if state["cut"]:
                data = data[: max(0, self.cut_after - state["sent"])]
                state["sent"] += len(data)
            elif state.get("stall"):
                state["sent"] += len(data)
                if state["sent"] >= self.stall_after:
                    self.stalled.set()
                    self.release.wait()
            try:
                sink.sendall(data)
            except OSError:
                break
            if state["cut"] and state["sent"] >= self.cut_after:
                break
        _close(source, sink)


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(1 << 16)
    except OSError:
        return b""


def _close(*socks: socket.socket) -> None:
    for sock in socks:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()
