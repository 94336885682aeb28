"""A real bridge for the tests: SQLite store in a temp dir, real emitter, uvicorn on a loopback port."""

from __future__ import annotations

import threading
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import uvicorn

with warnings.catch_warnings():  # starlette 1.x nudges towards httpx2; the httpx client is what we have
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from tasks.events import Debouncer, DebounceSettings, PrefectEventsEmitter, SQLiteStore, parse_rules
from tasks.events.origin import EventOrigins
from tasks.events.receiver import ReceiverSettings, create_app
from tasks.events.webserver import server_config
from tests.events.eventgrid import MEDIA
from tests.fixtures.services import free_port, wait_for_port

SECRET = "s3cr3t-for-tests-only"


def make_debouncer(state_dir: Path, rules=("*/*",), quiet: float = 300.0, marker: str = "_READY") -> Debouncer:
    return Debouncer(SQLiteStore(state_dir), DebounceSettings(rules=parse_rules(rules), quiet_seconds=quiet, marker=marker))


@contextmanager
def running_bridge(
    debouncer: Debouncer,
    api_url: str,
    *,
    max_body: int = 1024 * 1024,
    idle_timeout: float = 15.0,
    origins: EventOrigins | None = None,
) -> Iterator[str]:
    """Serve the receiver as `taoflow events serve` does until the block ends; yields its base URL."""
    emitter = PrefectEventsEmitter(api_url)
    settings = ReceiverSettings(secret=SECRET, max_body_bytes=max_body, flush_interval=0.2, idle_timeout=idle_timeout,
                                origins=origins or EventOrigins())
    app = create_app(debouncer, emitter, settings)
    port = free_port()
    server = uvicorn.Server(server_config(app, host="127.0.0.1", port=port, idle_timeout=idle_timeout))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    assert wait_for_port(port, 20), "the bridge did not listen"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        emitter.close()


@contextmanager
def in_process_receiver(state_dir: Path, *, rules=("data/*",), **settings) -> Iterator[TestClient]:
    """The receiver app in-process (no socket) with a real SQLite store; the emitter points at a
    closed port, so a window that slipped through shows in the counters, never in Prefect."""
    debouncer = make_debouncer(state_dir, rules=rules)
    emitter = PrefectEventsEmitter("http://127.0.0.1:9/api", timeout=0.5)
    app = create_app(debouncer, emitter, ReceiverSettings(secret=SECRET, flush_interval=60, **settings))
    with TestClient(app) as client:
        client.debouncer = debouncer
        yield client
    emitter.close()


def post(client, payload: bytes, content_type: str | None = MEDIA["eventgrid"], **kw):
    """POST one body to the receiver with the secret; `content_type=None` sends no Content-Type."""
    headers = {"content-type": content_type} if content_type else {}
    headers |= kw.pop("headers", {})
    return client.post(f"/eventgrid?code={SECRET}", content=payload, headers=headers, **kw)


def nothing_recorded(client) -> None:
    health = client.get("/healthz").json()
    assert health["counters"]["accepted"] == 0 and health["pending_windows"] == 0


def wait_until(predicate, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False
