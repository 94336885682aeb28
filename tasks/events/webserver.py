"""How the receiver is served: uvicorn with a deadline on idle connections.

uvicorn closes a keep-alive connection that stays quiet after a response, but not one that
opens and sends nothing, nor one that trickles a header byte now and then (each byte cancels
its keep-alive timer). Each would hold a socket and a file descriptor for good; enough of them
starve the bridge. `IdleDeadlineH11Protocol` gives every connection `idle_timeout` seconds,
from its opening or from its last response, to deliver a complete request head, then closes
it. A request whose *body* stalls is the app's to time out (the receiver answers 408).
"""

from __future__ import annotations

import asyncio

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol


class IdleDeadlineH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, closing connections that do not send a request head in time."""

    idle_timeout: float = 15.0
    _head_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._sync_deadline()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._sync_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._sync_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    def _in_request(self) -> bool:
        return self.cycle is not None and not self.cycle.response_complete

    def _sync_deadline(self) -> None:
        """Armed while waiting for a request head; never pushed back by partial data."""
        if self._in_request() or self.transport.is_closing():
            self._cancel_deadline()
        elif self._head_deadline is None:
            self._head_deadline = self.loop.call_later(self.idle_timeout, self._on_deadline)

    def _cancel_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _on_deadline(self) -> None:
        self._head_deadline = None
        if not self._in_request() and not self.transport.is_closing():
            self.transport.close()


def server_config(app, *, host: str, port: int, idle_timeout: float, log_level: str = "warning") -> uvicorn.Config:
    """The uvicorn config `taoflow events serve` (and the tests, and the bench) run the receiver with.

    >>> server_config(object(), host="127.0.0.1", port=8088, idle_timeout=5).timeout_keep_alive
    5
    """
    protocol = type("ReceiverH11Protocol", (IdleDeadlineH11Protocol,), {"idle_timeout": idle_timeout})
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol,
        lifespan="on",
        log_level=log_level,
        # An idle keep-alive connection after a response: uvicorn's own timer, same bound.
        timeout_keep_alive=max(1, int(idle_timeout)),
    )
