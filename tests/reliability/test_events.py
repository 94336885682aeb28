"""The event receiver rows: the hostile-input tests and the 1,000-event burst are the events
package's own tests; here they are run again (not copied) and their counts recorded."""

from __future__ import annotations

import random
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from tasks.events import Debouncer, DebounceSettings, MemoryStore, parse_delivery, parse_rules
from tasks.events.content import MAX_DEPTH
from tasks.events.origin import EventOrigins
from tests.events.bridge import in_process_receiver, make_debouncer, post, running_bridge
from tests.events.conftest import prefect_api_url  # noqa: F401 - fixture
from tests.events.eventgrid import MEDIA, as_cloudevent, blob_created, body
from tests.events.test_bridge_e2e import test_burst_of_1000_events_one_event_per_dataset_none_lost as burst
from tests.reliability import ledger
from tests.reliability.ledger import REPO

pytestmark = pytest.mark.services

BINARY_HEADERS = {"ce-id": "1", "ce-source": "/x", "ce-type": "t", "ce-specversion": "1.0"}


def test_receiver_hostile_suite_passes_and_is_counted(tmp_path):
    junit = tmp_path / "hostile.xml"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/events/test_receiver_hostile.py", "-q", "-p", "no:cacheprovider",
         f"--junitxml={junit}"], cwd=REPO, capture_output=True, text=True, timeout=300)
    suite = ET.parse(junit).getroot().find("testsuite")
    cases, failures = int(suite.get("tests")), int(suite.get("failures")) + int(suite.get("errors"))
    skipped = int(suite.get("skipped"))
    assert done.returncode == 0 and failures == 0 and skipped == 0, done.stdout[-3000:]
    ledger.record("event-receiver", trials=cases, crashed=failures, test_cases_passed=cases - failures,
                  source="tests/events/test_receiver_hostile.py")


def test_burst_of_1000_events(prefect_api_url, tmp_path):  # noqa: F811
    figures: dict[str, int] = {}
    burst(prefect_api_url, tmp_path, lambda name, value: figures.__setitem__(name, value))
    # The burst test asserts 1,000 accepted, 20 replays counted as duplicates, one event per dataset
    # window and every upload in one; its latency is measured by bench/events.py, not here.
    ledger.record("event-load", trials=1000, lost=figures["lost"], runs_for_4_dataset_windows=figures["windows"])


# --- issue 15 items 2 and 6 at the receiver -------------------------------------------------------

ALLOWED = "https://acct.blob.core.windows.net/data/"
_HOSTS = [
    "acct.blob.core.windows.net.evil.example", "acct.blob.evil.example", "evil.blob.core.windows.net",
    "acct-blob.core.windows.net", "acct.blob.core.windows.net@evil.example", "evil.example#@acct.blob.core.windows.net",
    "127.0.0.1:10000/acct", "[::1]:10000/acct", "169.254.169.254/acct", "acct.blob.core.windows.net:444",
    "acct.blob.core.windows.net:80", "acct.file.core.windows.net", "acct.queue.core.windows.net",
    "ACCT.BLOB.CORE.WINDOWS.NET", "acct.blob.core.windows.net.", "acct%2eblob.core.windows.net", "localhost/acct",
]
_SCHEMES = ["https", "https", "http", "ftp", "file", "javascript"]
_PATHS = ["/data/ds/x.png", "/logs/ds/x.png", "/data/ds/y.png", "/data/../logs/ds/x.png", "//data/ds/x.png",
          "/data/ds/x.png?sv=1&sig=abc", "/data/ds/x.png#top", "/data/ds%2Fx.png", "/Data/ds/x.png"]
_ACCOUNTS = ["acct", "acct", "evil", "ACCT", "acct2"]
_CONTAINERS = ["data", "data", "logs", "Data"]


def _hostile_event(rng: random.Random) -> dict:
    account, container = rng.choice(_ACCOUNTS), rng.choice(_CONTAINERS)
    event = blob_created("acct", "data", "ds/x.png")
    event["topic"] = f"/subscriptions/0/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/{account}"
    event["subject"] = f"/blobServices/default/containers/{container}/blobs/ds/x.png"
    event["data"]["url"] = f"{rng.choice(_SCHEMES)}://{rng.choice(_HOSTS)}{rng.choice(_PATHS)}"
    if rng.random() < 0.2:  # a self-consistent event for storage that is not on the allow-list
        event = blob_created(rng.choice(["evil", "acct2"]), rng.choice(["data", "logs"]), "ds/x.png")
    return event


def test_event_urls_pointing_elsewhere_never_become_datasets(tmp_path):
    rng = random.Random(15)
    statuses: Counter[int] = Counter()
    origins = EventOrigins(allow=("acct/data",))
    with in_process_receiver(tmp_path, rules=("*/*",), origins=origins) as client:
        for trial in range(1000):
            # Every tenth is genuine (and must still get through): the receiver is not refusing everything.
            event = blob_created("acct", "data", f"ds/{trial}.png") if trial % 10 == 0 else _hostile_event(rng)
            schema = "eventgrid" if trial % 2 else "cloudevents"
            sent = [event] if schema == "eventgrid" else as_cloudevent(event)
            statuses[post(client, body(sent), MEDIA[schema]).status_code] += 1
        windows = client.debouncer.store.pending()
    escaped = [w.location for w in windows if not w.location.startswith(ALLOWED)]
    crashed = sum(count for status, count in statuses.items() if status >= 500)
    assert escaped == [] and crashed == 0 and statuses[200] == 100, (escaped[:5], statuses)
    ledger.record("event-origins", trials=1000, leaked=len(escaped), crashed=crashed,
                  refused_400=statuses[400], refused_403=statuses[403], genuine_accepted=statuses[200])


def test_deep_json_future_markers_and_idle_connections_are_bounded(tmp_path):
    crashed = sealed_forever = open_connections = 0
    with in_process_receiver(tmp_path / "deep") as client:
        deep = [(d, shape) for d in (MAX_DEPTH + 1, 1_000, 10_000, 100_000) for shape in ("[]", "{}")]
        for depth, shape in deep:
            text = ("[" * depth + "]" * depth) if shape == "[]" else ('{"a":' * depth + "0" + "}" * depth)
            for content_type, headers in ((MEDIA["eventgrid"], {}), ("application/json", BINARY_HEADERS)):
                crashed += post(client, text.encode(), content_type, headers=headers).status_code != 400
    skew = DebounceSettings().max_clock_skew_seconds
    now = time.time()
    clock = datetime.fromtimestamp(now, timezone.utc)
    futures = [clock + timedelta(hours=1), clock + timedelta(days=365), clock + timedelta(days=80 * 365),
               datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc)]
    for marker_time in futures:
        debouncer = Debouncer(MemoryStore(), DebounceSettings(parse_rules(["c/*"])))
        debouncer.ingest(parse_delivery(body([blob_created("acct", "c", "ds/_READY", at=marker_time)])).blobs, now=now)
        debouncer.flush(_Sink(), now)
        later = clock + timedelta(seconds=skew + 60)  # a new upload once the skew has passed
        again = [blob_created("acct", "c", "ds/new.png", at=later), blob_created("acct", "c", "ds/_READY", at=later)]
        debouncer.ingest(parse_delivery(body(again)).blobs, now=now + skew + 61)
        sealed_forever += len(debouncer.flush(_Sink(), now + skew + 61).emitted) != 1
    kinds = ("silent", b""), ("trickled head", b"POST /eventgrid HTTP/1.1\r\nHost: x\r\n"), \
        ("stalled body", b"POST /eventgrid HTTP/1.1\r\nHost: x\r\nContent-Length: 99\r\n\r\n[")
    with running_bridge(make_debouncer(tmp_path / "idle"), "http://127.0.0.1:9/api", idle_timeout=1.0) as url:
        port = int(url.rsplit(":", 1)[1])
        for _, opening in kinds * 2:
            with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
                sock.sendall(opening)
                try:
                    while sock.recv(4096):
                        pass
                except ConnectionResetError:
                    pass
                except TimeoutError:
                    open_connections += 1
    trials = len(deep) * 2 + len(futures) + len(kinds) * 2
    assert crashed == sealed_forever == open_connections == 0
    ledger.record("event-bounds", trials=trials, crashed=crashed + open_connections, lost=sealed_forever,
                  json_depths_refused_400=len(deep) * 2, future_markers_announced_again=len(futures) - sealed_forever,
                  idle_connections_closed=len(kinds) * 2 - open_connections)


class _Sink:
    def emit(self, events: list[dict]) -> None:
        pass
