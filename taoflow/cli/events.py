"""`taoflow events serve`: the Event Grid webhook that turns blob uploads into dataset-ready events."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from taoflow.cli.output import err_console

DEFAULT_STATE_DIR = Path("~/.taoflow/events")


def _prefect_api() -> tuple[str | None, str | None, str | None]:
    """The API URL and credentials from the active Prefect profile (env vars win, as in Prefect)."""
    from prefect.settings import get_current_settings

    api = get_current_settings().api
    key = api.key.get_secret_value() if api.key else None
    auth = api.auth_string.get_secret_value() if api.auth_string else None
    return api.url, key, auth


def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on (0.0.0.0 behind a TLS proxy)."),
    port: int = typer.Option(8088, min=1, max=65535, help="TCP port."),
    quiet_seconds: float = typer.Option(300.0, min=0.0, help="A dataset is ready after this long without uploads."),
    marker: str = typer.Option("_READY", help="Blob name at a dataset's root that makes it ready at once."),
    state_dir: Path = typer.Option(DEFAULT_STATE_DIR, help="Where pending windows and seen ids survive restarts."),
    rule: list[str] = typer.Option(
        [], "--rule", help="CONTAINER/SEGMENT/... dataset roots, one glob per folder level (default '*/*')."
    ),
    allow: list[str] = typer.Option(
        [], "--allow", envvar="TAOFLOW_EVENTS_ALLOW",
        help="Only act on events for this ACCOUNT or ACCOUNT/CONTAINER (repeat; env: space-separated); "
        "others are refused with 403. Default: any account.",
    ),
    endpoint: list[str] = typer.Option(
        [], "--endpoint", envvar="TAOFLOW_EVENTS_ENDPOINTS",
        help="Blob account URL to accept besides Azure's ACCOUNT.blob.<cloud> hosts, e.g. "
        "http://127.0.0.1:10000/devstoreaccount1 (repeat; env: space-separated).",
    ),
    max_body_bytes: int = typer.Option(1024 * 1024, help="Bodies larger than this are refused with 413."),
    idle_timeout: float = typer.Option(
        15.0, min=0.1, help="Seconds a connection gets for a request head, and for a body (408), before it is closed."
    ),
    max_clock_skew: float = typer.Option(
        300.0, min=0.0, help="Event times further than this ahead of this host's clock count as now + this."
    ),
    insecure: bool = typer.Option(False, "--insecure", help="Run without TAOFLOW_EVENTS_SECRET (closed test nets only)."),
) -> None:
    """Receive Azure Event Grid blob events at POST /eventgrid?code=$TAOFLOW_EVENTS_SECRET."""
    from tasks.events import Debouncer, DebounceSettings, PrefectEventsEmitter, SQLiteStore, parse_rules
    from tasks.events.origin import EventOrigins
    from tasks.events.receiver import SECRET_ENV, ReceiverSettings, create_app
    from tasks.events.webserver import server_config

    settings = ReceiverSettings(
        secret=os.environ.get(SECRET_ENV) or None, insecure=insecure, max_body_bytes=max_body_bytes,
        idle_timeout=idle_timeout, origins=EventOrigins(allow=tuple(allow), endpoints=tuple(endpoint)),
    )
    settings.check()
    rules = parse_rules(rule)
    debouncer = Debouncer(
        SQLiteStore(state_dir),
        DebounceSettings(rules=rules, quiet_seconds=quiet_seconds, marker=marker, max_clock_skew_seconds=max_clock_skew),
    )
    url, key, auth = _prefect_api()
    emitter = PrefectEventsEmitter(url or "", api_key=key, auth_string=auth)
    app = create_app(debouncer, emitter, settings)
    scope = ", ".join(settings.origins.allow) or "any account"
    err_console.print(
        f"taoflow events: POST http://{host}:{port}/eventgrid -> {emitter.url}; rules {', '.join(map(str, rules))}; "
        f"quiet {quiet_seconds:g}s, marker {marker}; storage: {scope}; state {debouncer.store.path}",
        markup=False,
    )
    import uvicorn

    uvicorn.Server(server_config(app, host=host, port=port, idle_timeout=idle_timeout)).run()


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    events = typer.Typer(help="Blob upload events -> dataset-ready Prefect events.", no_args_is_help=True)
    events.command("serve")(serve)
    app.add_typer(events, name="events")
