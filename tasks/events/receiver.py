"""The Event Grid webhook: an ASGI app that records deliveries and emits in the background.

`POST /eventgrid?code=SECRET` takes Event Grid or CloudEvents bodies, commits them to the
store and answers 200 at once; a background loop flushes due windows every second.
Refusals are the statuses Event Grid does not retry (401, 413, 400), each with a reason.
"""

from __future__ import annotations

import contextlib
import hmac
import time
from dataclasses import dataclass

import anyio
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tasks.errors import ConfigError, EventError
from tasks.events.debounce import Debouncer, Emitter
from tasks.events.parse import parse_delivery

DEFAULT_MAX_BODY = 1024 * 1024
SECRET_ENV = "TAOFLOW_EVENTS_SECRET"


@dataclass
class ReceiverSettings:
    """The webhook's own settings; the debounce rules live in the `Debouncer`."""

    secret: str | None
    insecure: bool = False
    max_body_bytes: int = DEFAULT_MAX_BODY
    flush_interval: float = 1.0

    def check(self) -> None:
        if not self.secret and not self.insecure:
            raise ConfigError(
                f"no shared secret: ${SECRET_ENV} is empty",
                fix=f"export {SECRET_ENV}=<a long random string> and put it in the Event Grid endpoint URL as "
                "?code=<it>; only for a closed test network, pass --insecure",
            )
        if self.max_body_bytes < 1024:
            raise ConfigError(f"body size cap {self.max_body_bytes} is too small", fix="allow at least 1024 bytes")


class _TooLarge(Exception):
    pass


def _refuse(status: int, reason: str, **extra) -> JSONResponse:
    return JSONResponse({"error": reason, **extra}, status_code=status)


def create_app(debouncer: Debouncer, emitter: Emitter, settings: ReceiverSettings) -> Starlette:
    """Build the receiver; refuses (ConfigError) to exist without a secret unless insecure."""
    settings.check()
    rejected = {"unauthorized": 0, "too_large": 0, "malformed": 0}

    def authorised(request: Request) -> bool:
        if settings.secret is None:
            return True
        given = request.query_params.get("code", "")
        return hmac.compare_digest(given.encode(), settings.secret.encode())

    async def read_body(request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > settings.max_body_bytes):
            raise _TooLarge
        chunks, size = [], 0
        async for chunk in request.stream():  # a lying or absent Content-Length is caught here
            size += len(chunk)
            if size > settings.max_body_bytes:
                raise _TooLarge
            chunks.append(chunk)
        return b"".join(chunks)

    async def eventgrid(request: Request) -> Response:
        if not authorised(request):
            rejected["unauthorized"] += 1
            return _refuse(401, "missing or wrong ?code= secret")
        if request.method == "OPTIONS":
            return _abuse_protection(request)
        try:
            body = await read_body(request)
        except _TooLarge:
            rejected["too_large"] += 1
            return _refuse(413, f"body over {settings.max_body_bytes} bytes", limit=settings.max_body_bytes)
        except ClientDisconnect:
            return _refuse(400, "the client went away mid-body")
        try:
            delivery = parse_delivery(body)
        except EventError as exc:
            rejected["malformed"] += 1
            return _refuse(400, exc.render())
        if delivery.validation_code is not None:
            return JSONResponse({"validationResponse": delivery.validation_code})
        counts = await run_in_threadpool(
            debouncer.ingest, delivery.blobs, ignored=len(delivery.ignored), now=time.time()
        )
        return JSONResponse(counts)

    async def healthz(request: Request) -> Response:
        def snapshot() -> dict:
            with debouncer.store.transaction():
                return {"counters": debouncer.store.counters(), "pending_windows": len(debouncer.store.pending())}

        state = await run_in_threadpool(snapshot)
        return JSONResponse({"status": "ok", **state, "rejected": rejected, "last_emit_error": debouncer.last_error})

    async def flush_forever() -> None:
        while True:
            try:
                await anyio.to_thread.run_sync(lambda: debouncer.flush(emitter, time.time()))
            except Exception as exc:  # noqa: BLE001 - one bad flush must not end the loop; healthz says why
                debouncer.last_error = f"{exc.__class__.__name__}: {exc}"
            await anyio.sleep(settings.flush_interval)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        async with anyio.create_task_group() as group:
            group.start_soon(flush_forever)
            yield
            group.cancel_scope.cancel()

    return Starlette(
        routes=[
            Route("/eventgrid", eventgrid, methods=["POST", "OPTIONS"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )


def _abuse_protection(request: Request) -> Response:
    """CloudEvents webhook validation (HTTP 1.1 Web Hooks spec section 4)."""
    origin = request.headers.get("webhook-request-origin", "*")
    return Response(
        status_code=200,
        headers={"WebHook-Allowed-Origin": origin or "*", "WebHook-Allowed-Rate": "*", "Allow": "POST, OPTIONS"},
    )
