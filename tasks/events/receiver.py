"""The Event Grid webhook: an ASGI app that records deliveries and emits in the background.

`POST /eventgrid?code=SECRET` takes Event Grid or CloudEvents bodies (structured, batch or
binary mode), commits them to the store and answers 200 at once; a background loop flushes
due windows every second. Each refusal has a reason and a status chosen for what Event Grid
does with it: it never redelivers 400, 401, 403 or 413 (the body cannot become acceptable:
malformed, forged, not ours, too big), and redelivers everything else with back-off (408 an
idle body, 415 a media type we cannot read, 503 a store that cannot record it now).
"""

from __future__ import annotations

import contextlib
import hmac
import time

import anyio
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tasks.errors import ConfigError, EventError, StoreUnavailable, UnreadableContent
from tasks.events.debounce import Debouncer, Emitter
from tasks.events.origin import EventOrigins
from tasks.events.parse import Delivery, parse_delivery

DEFAULT_MAX_BODY = 1024 * 1024
SECRET_ENV = "TAOFLOW_EVENTS_SECRET"
#: Seconds Event Grid is asked to wait before redelivering after a 503.
RETRY_AFTER = 10


class ReceiverSettings(BaseModel):
    """The webhook's own settings; the debounce rules live in the `Debouncer`."""

    model_config = ConfigDict(frozen=True)

    secret: SecretStr | None = Field(
        description=f"Shared secret Event Grid sends as ?code=… (from ${SECRET_ENV}); compared in constant time."
    )
    insecure: bool = Field(False, description="Accept deliveries without a secret (closed test networks only).")
    max_body_bytes: int = Field(DEFAULT_MAX_BODY, description="Bodies larger than this are refused with 413.")
    flush_interval: float = Field(1.0, gt=0, description="Seconds between looks for due dataset windows.")
    idle_timeout: float = Field(
        15.0,
        gt=0,
        description="Seconds a connection may take to send a request head (from opening or its last answer) "
        "and, separately, its body; then it is closed (body: 408). Event Grid waits 30 s per delivery.",
    )
    origins: EventOrigins = Field(
        default_factory=EventOrigins, description="Which storage accounts and endpoints events may point at."
    )

    def check(self) -> None:
        if not self.secret and not self.insecure:
            raise ConfigError(
                f"no shared secret: ${SECRET_ENV} is empty",
                fix=f"export {SECRET_ENV}=<a long random string> and put it in the Event Grid endpoint URL as "
                "?code=<it>; only for a closed test network, pass --insecure",
            )
        if self.max_body_bytes < 1024:
            raise ConfigError(f"body size cap {self.max_body_bytes} is too small", fix="allow at least 1024 bytes")
        self.origins.check()


class _TooLarge(Exception):
    pass


def _refuse(status: int, reason: str, headers: dict[str, str] | None = None, **extra) -> JSONResponse:
    return JSONResponse({"error": reason, **extra}, status_code=status, headers=headers)


def create_app(debouncer: Debouncer, emitter: Emitter, settings: ReceiverSettings) -> Starlette:
    """Build the receiver; refuses (ConfigError) to exist without a secret unless insecure.

    Served by `tasks.events.webserver` (the emitter: `PrefectEventsEmitter`); here in process:

    >>> from starlette.testclient import TestClient
    >>> from tasks.events import DebounceSettings, MemoryStore
    >>> class Printed:
    ...     def emit(self, events): print([event["event"] for event in events])
    >>> app = create_app(Debouncer(MemoryStore(), DebounceSettings()), Printed(), ReceiverSettings(secret="s3cret"))
    >>> handshake = [{"id": "1", "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent", "subject": "",
    ...               "eventTime": "2026-01-01T00:00:00Z", "dataVersion": "1", "data": {"validationCode": "c0de"}}]
    >>> with TestClient(app) as client:
    ...     client.post("/eventgrid?code=s3cret", json=handshake).json(), client.post("/eventgrid", json=[]).status_code
    ({'validationResponse': 'c0de'}, 401)
    >>> try:
    ...     create_app(Debouncer(MemoryStore(), DebounceSettings()), Printed(), ReceiverSettings(secret=None))
    ... except ConfigError as exc: print(exc.what)
    no shared secret: $TAOFLOW_EVENTS_SECRET is empty
    """
    settings.check()
    secret = settings.secret.get_secret_value().encode() if settings.secret else None
    rejected = dict.fromkeys(("unauthorized", "too_large", "malformed", "unsupported", "not_allowed", "timed_out",
                              "store_unavailable"), 0)

    def authorised(request: Request) -> bool:
        if secret is None:
            return True
        return hmac.compare_digest(request.query_params.get("code", "").encode(), secret)

    async def read_body(request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > settings.max_body_bytes):
            raise _TooLarge
        chunks, size = [], 0
        with anyio.fail_after(settings.idle_timeout):
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
        except TimeoutError:
            rejected["timed_out"] += 1
            return _refuse(408, f"the body did not arrive within {settings.idle_timeout:g} s",
                           headers={"Connection": "close"})
        except ClientDisconnect:
            return _refuse(400, "the client went away mid-body")
        try:
            delivery = parse_delivery(body, request.headers, origins=settings.origins)
        except UnreadableContent as exc:
            rejected["unsupported"] += 1
            return _refuse(415, exc.render())
        except EventError as exc:
            rejected["malformed"] += 1
            return _refuse(400, exc.render())
        if delivery.validation_code is not None:
            return JSONResponse({"validationResponse": delivery.validation_code})
        refused = [{"id": r.event_id, "reason": r.reason} for r in delivery.refused]
        rejected["not_allowed"] += len(refused)
        if refused and not (delivery.blobs or delivery.ignored):
            return _refuse(403, "every event points at storage outside the allow-list", refused=refused)
        try:
            counts = await run_in_threadpool(_ingest, debouncer, delivery)
        except StoreUnavailable as exc:
            rejected["store_unavailable"] += 1
            return _refuse(503, exc.render(), headers={"Retry-After": str(RETRY_AFTER)})
        return JSONResponse({**counts, "refused": refused} if refused else counts)

    async def healthz(request: Request) -> Response:
        def snapshot() -> dict:
            with debouncer.store.transaction():
                return {"counters": debouncer.store.counters(), "pending_windows": len(debouncer.store.pending())}

        try:
            state = await run_in_threadpool(snapshot)
        except StoreUnavailable as exc:
            return _refuse(503, exc.render(), rejected=rejected)
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


def _ingest(debouncer: Debouncer, delivery: Delivery) -> dict[str, int]:
    # Refused events are counted with the filtered ones: received = accepted + filtered + duplicates holds.
    ignored = len(delivery.ignored) + len(delivery.refused)
    return debouncer.ingest(delivery.blobs, ignored=ignored, now=time.time())


def _abuse_protection(request: Request) -> Response:
    """CloudEvents webhook validation (HTTP 1.1 Web Hooks spec section 4)."""
    origin = request.headers.get("webhook-request-origin", "*")
    return Response(
        status_code=200,
        headers={"WebHook-Allowed-Origin": origin or "*", "WebHook-Allowed-Rate": "*", "Allow": "POST, OPTIONS"},
    )
