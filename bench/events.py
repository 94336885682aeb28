"""The Event Grid bridge's answer latency, against baselines behind the same server, in one run.

Three apps are served one after the other by the same uvicorn configuration `taoflow events
serve` uses (`tasks.events.webserver.server_config`), each in its own process, and get the same
deliveries from one client process:

- `empty`: an ASGI app that reads the body and answers 200 (what the server and HTTP cost);
- `json`: a Starlette handler that parses the JSON body and answers 200 (the least a webhook does);
- `taoflow`: the receiver (secret check, schema by Content-Type, origin checks, SQLite commit),
  emitting to a local stand-in for the Prefect API's `/events`.

Workloads: 1,000 BlobCreated events for 4 datasets sent one per request (Event Grid's default),
then the same events as 50 batches of 20 (Event Grid and CloudEvents schemas alternating).
Printed: p50/p99 per request (medians over `--rounds`, default 3, the apps interleaved) and each
ratio to the baselines, and for `taoflow` how long after
the marker's POST answered the dataset-ready event reached the stand-in API (the flush loop
runs every second, so about 0-1 s by design). Run: `.venv/bin/python bench/events.py`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.events.eventgrid import as_cloudevent, dataset_burst, delivery  # noqa: E402
from tests.fixtures.services import free_port, wait_for_port  # noqa: E402

SECRET = "bench-secret"


# --- the served apps (run in child processes) -------------------------------------------------


def _empty_app():
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        more = True
        while more:
            message = await receive()
            more = message.get("more_body", False)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b"{}"})

    return app


def _json_app():
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def handler(request: Request):
        document = json.loads(await request.body())
        return JSONResponse({"received": len(document) if isinstance(document, list) else 1})

    return Starlette(routes=[Route("/eventgrid", handler, methods=["POST"])])


def _sink_app():
    """Stand-in for the Prefect API's POST /events; GET /received lists (resource id, arrival time)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    received: list[tuple[str, float]] = []

    async def events(request: Request):
        for event in await request.json():
            received.append((event["resource"]["prefect.resource.id"], time.time()))
        return JSONResponse({})

    async def listing(request: Request):
        return JSONResponse(received)

    return Starlette(routes=[Route("/api/events", events, methods=["POST"]), Route("/received", listing)])


def _taoflow_app(state: str, sink: str):
    from tasks.events import Debouncer, DebounceSettings, PrefectEventsEmitter, SQLiteStore, parse_rules
    from tasks.events.receiver import ReceiverSettings, create_app

    debouncer = Debouncer(SQLiteStore(state), DebounceSettings(rules=parse_rules(["uploads/drop/*"])))
    return create_app(debouncer, PrefectEventsEmitter(sink), ReceiverSettings(secret=SECRET))


def serve(kind: str, port: int, state: str, sink: str) -> None:
    import uvicorn

    from tasks.events.webserver import server_config

    app = {"empty": _empty_app, "json": _json_app, "sink": _sink_app}.get(kind)
    app = app() if app else _taoflow_app(state, sink)
    uvicorn.Server(server_config(app, host="127.0.0.1", port=port, idle_timeout=15)).run()


# --- the client -------------------------------------------------------------------------------------


class Served:
    def __init__(self, kind: str, state: Path, sink: str = "") -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--serve", kind, "--port", str(self.port), "--state", str(state), "--sink", sink],
            cwd=REPO,
        )
        if not wait_for_port(self.port, 60):
            self.process.kill()
            raise SystemExit(f"the {kind} app did not listen")
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


def _workloads(account: str) -> dict[str, list[dict]]:
    events = [e for n in range(4) for e in dataset_burst(account, "uploads", f"drop/set-{n}", 249)]
    singles = [delivery([e]) for e in events]
    batches = [delivery(events[i:i + 20]) if (i // 20) % 2 else
               delivery([as_cloudevent(e) for e in events[i:i + 20]], "cloudevents-batch")
               for i in range(0, len(events), 20)]
    return {"1,000 single-event POSTs": singles, "50 POSTs of 20 events": batches}


def _measure(url: str, requests: list[dict]) -> tuple[list[float], dict[int, float]]:
    """Per-request seconds, and for each marker POST the wall time its answer arrived."""
    latencies, markers = [], {}
    with httpx.Client(timeout=60) as client:
        for index, request in enumerate(requests):
            start = time.perf_counter()
            answer = client.post(f"{url}/eventgrid?code={SECRET}", **request)
            latencies.append(time.perf_counter() - start)
            if answer.status_code != 200:
                raise SystemExit(f"{url}: {answer.status_code} {answer.text[:300]}")
            if b"/_READY" in request["content"]:
                markers[index] = time.time()
    return latencies, markers


def _ms(samples: list[float], q: int) -> float:
    return statistics.quantiles(samples, n=100)[q - 1] * 1000


def main(rounds: int) -> None:
    # Per round and (app, workload): (p50 ms, p99 ms); rounds interleave the apps so load spikes
    # on a shared machine hit all of them, and the medians over rounds are printed.
    figures: dict[tuple[str, str], list[tuple[float, float]]] = {}
    emit_delays: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        sink = Served("sink", Path(tmp))
        try:
            for number in range(rounds):
                for kind in ("empty", "json", "taoflow"):
                    warm_up = _workloads(f"warm{uuid.uuid4().hex[:10]}")
                    for workload, requests in _workloads(f"acct{uuid.uuid4().hex[:10]}").items():
                        served = Served(kind, Path(tmp) / f"{kind}-{number}-{len(requests)}", f"{sink.url}/api")
                        try:
                            _measure(served.url, warm_up[workload][:10])  # first connection, lazy imports
                            latencies, markers = _measure(served.url, requests)
                            if kind == "taoflow":
                                time.sleep(3)  # the flush loop runs every second
                                arrivals = [t for _, t in httpx.get(f"{sink.url}/received").json()[-4:]]
                                emit_delays += [a - m for a, m in zip(sorted(arrivals), sorted(markers.values()))]
                        finally:
                            served.stop()
                        figures.setdefault((kind, workload), []).append((_ms(latencies, 50), _ms(latencies, 99)))
        finally:
            sink.stop()
    median = {key: tuple(statistics.median(v[i] for v in values) for i in (0, 1)) for key, values in figures.items()}
    print(f"median over {rounds} rounds of each round's p50 / p99 per request")
    print("| workload | app | p50 ms | p99 ms | p50 / empty | p99 / empty | p50 / json | p99 / json |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for workload in ("1,000 single-event POSTs", "50 POSTs of 20 events"):
        empty, plain = median[("empty", workload)], median[("json", workload)]
        for kind in ("empty", "json", "taoflow"):
            p50, p99 = median[(kind, workload)]
            print(f"| {workload} | {kind} | {p50:.1f} | {p99:.1f} | {p50 / empty[0]:.1f}x | {p99 / empty[1]:.1f}x | "
                  f"{p50 / plain[0]:.1f}x | {p99 / plain[1]:.1f}x |")
    print(f"\nmarker answered -> dataset-ready event at the API: median {statistics.median(emit_delays):.2f} s, "
          f"max {max(emit_delays):.2f} s over {len(emit_delays)} datasets (flush loop: every 1 s)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve")
    parser.add_argument("--port", type=int)
    parser.add_argument("--state", default="")
    parser.add_argument("--sink", default="")
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    if options.serve:
        serve(options.serve, options.port, options.state, options.sink)
    else:
        main(options.rounds)
