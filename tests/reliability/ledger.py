"""The reliability ledger: every trial test records what it tried and what held; the report
table in docs/reliability.md is rendered from these records, so the document cannot drift.

Records live in .cache/reliability/<row>.json (one file per row, rewritten on every add, so a
crash mid-session keeps what was measured). A record made by an earlier pytest session is
replaced by the first record of this one, never added to.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import uuid
from pathlib import Path
from typing import NamedTuple

REPO = Path(__file__).resolve().parents[2]
RECORDS = Path(os.environ.get("TAOFLOW_RELIABILITY_RECORDS") or REPO / ".cache" / "reliability")
DOC = REPO / "docs" / "reliability.md"
START, END = "<!-- reliability-table:start -->", "<!-- reliability-table:end -->"
#: One id per pytest run (tests/conftest.py sets it before parallel workers start, so they share
#: it and their records add up): records of other runs are stale.
SESSION = os.environ.get("TAOFLOW_TEST_RUN") or uuid.uuid4().hex
BAD = ("lost", "leaked", "crashed")


class Row(NamedTuple):
    """One row of the table: what was tried, what had to hold, the trials the issue asks for at least."""

    id: str
    tried: str
    held: str
    minimum: int = 1


ROWS: tuple[Row, ...] = (
    Row("azurite-download", "Azurite killed mid-download (sync-down task), restarted",
        "task retry completes; files byte-identical"),
    Row("azurite-upload", "Azurite killed mid-upload (sync-up task) while readers poll, restarted",
        "task retry publishes; readers never saw a half-published model; byte-identical"),
    Row("dockerd-restart", "Docker engine restarted while a training job runs",
        "typed transient error (EngineUnavailable, or TrainingFailed exit 143 terminated from outside); "
        "container reaped; retry resumes from the last checkpoint"),
    Row("trainer-crash", "Stand-in trainer crashes (recorded or hard) at a random epoch (seeded), Prefect task retries",
        "completed after resume, or TrainingFailed after one retry that repeated the crash; no false success; "
        "no checkpoint lost", 20),
    Row("cancel", "Cancelled at a random moment: CancelToken during training, or publishing interrupted at a random file",
        "TrainingCancelled with resume advice; no container left; no partial upload visible", 10),
    Row("prefect-cancel", "A served training flow run cancelled through the Prefect API at a random moment",
        "run ends Cancelled (or Completed if the cancel came too late); no container left; "
        "results published completely or not at all", 10),
    Row("disk-full", "Cache dir on a 2 MiB tmpfs, sync-down of a larger dataset (ENOSPC)",
        "StorageError naming the path; no partial file; manifest sound; retry after space frees completes"),
    Row("spec-fuzz", "Mutated real DetectNet_v2 specs through parse, check, facts and rewrite",
        "SpecError or a result; no other exception; nothing written", 10_000),
    Row("dataset-fuzz", "Random label files, truncated and garbage images through the validator (deep)",
        "a report with findings; no exception; no write in the dataset", 5_000),
    Row("blob-names", "Hostile blob names (.., absolute, backslash, NUL, controls, 1,025 chars, NFC/NFD twins)",
        "StorageError before any write, or a file inside the target; nothing outside"),
    Row("config-fuzz", "Fuzzed requests through TrainRequest.parse, from_component_inputs, load_config",
        "a request or ConfigError; nothing else escapes", 1_000),
    Row("event-receiver", "Hostile bodies at the Event Grid receiver (tests/events/test_receiver_hostile.py)",
        "4xx with a reason; no crash; replays counted once"),
    Row("secrets", "Whole flow with a TAO key, a SAS token and a connection string; every output scanned",
        "0 occurrences in logs, artifacts, parameters, errors, files, container env"),
    Row("event-load", "1,000 BlobCreated events in a burst (tests/events/test_bridge_e2e.py)",
        "one run per dataset window; 0 lost (latency: bench/events.py)"),
    Row("event-origins", "Seeded hostile events: data.url on lookalike/other hosts, schemes, ports, user info, "
        "other account/container/blob than topic and subject, storage outside the allow-list",
        "400 (contradicts itself) or 403 (not allowed); no dataset outside the allowed account/container", 1_000),
    Row("event-bounds", "JSON nested 33 to 100,000 deep (Event Grid and binary mode), _READY markers dated 1 h "
        "to year 9999 ahead, connections that idle, trickle a head or stall a body",
        "400, no crash; the dataset announced again after the clock skew; every connection closed"),
    Row("hostile-trainer", "A trainer plants links to a host file and FIFOs in its results folder (log file, "
        "status.json, model file), or leaves a status.json line nested 100,000 deep, on both launchers "
        "(tests/launch/test_hostile_results.py)",
        "one LaunchError naming the planted file (the deep line: skipped as a foreign line, the run judged as "
        "ever); the target neither read nor written; no hang", 12),
    Row("output-names", "Hostile model_app_name / model_subfolder / model_name / log_file (.., /, #, ?sv=..., "
        "spaces, 201 chars, ...) through TrainRequest, component inputs, job files, the deployments' schema and "
        "join_location; edge names that pass published to Azurite and disk",
        "ConfigError stating the allowed characters, or published inside OUTPUT/APP/SUBFOLDER; "
        "0 writes outside (a write outside counts as leaked)", 100),
    Row("deployment-secrets", "Deployment runs through a real `prefect server start`: a key or a SAS in the request, "
        "a top-level key, the schema check turned off; then a full training run with the key in a Secret block",
        "refused by the server before storage, or failed at once with the stored copy masked; 0 occurrences in "
        "parameters, logs, state messages, task runs, artifacts, events, server and runner logs, files, container env"),
    Row("sdk-errors", "Azurite down while a run stages a SAS location: each transport attempt's Azure SDK error "
        "quotes the request URL (trials: those attempts); the step then fails once, not retried",
        "every log line, state message and error text shows the URL with sig=*** or <SAS redacted>; "
        "0 signatures, keys or connection strings"),
    Row("storage-symlinks", "Symlinks (to host files and folders, dangling), FIFOs and devices planted in a results "
        "folder by a real container, then published, synced down and staged",
        "never read, opened or written through (inotify on the host side); skipped with a warning; no hang", 10),
    Row("hostile-registry", "A registry planted with links (a champion's version folder, its weights/), versions "
        "without their marker or card, a champion's model gone or changed after publication, pointers naming files "
        "outside their version, a 2 MB pointer, a 200 MB card, a 100 MB marker, Infinity/NaN metrics; local and "
        "Azurite, and a linked champion through a whole training run on dockerd",
        "the champion refused (the run: published, Not promoted) before anything is read through a link "
        "(inotify) or placed in the cache; an oversized file refused by its size before it is downloaded (CLI peak "
        "memory within 48 MB of a normal run); a non-finite number makes the file damaged", 20),
    Row("storage-endpoints", "Blob locations on foreign hosts (ACCOUNT.blob.<other domain>, look-alike suffixes, "
        "other ports, IP/localhost, userinfo) with DefaultAzureCredential, behind a TLS-intercepting fake internet",
        "refused before any token request; 0 connections to the host; Azure's and the configured endpoint still work",
        8),
    Row("storage-cleartext", "Blob locations whose credential would travel over plain http:// to an Azure "
        "endpoint: a SAS in the URL, an account-key connection string (DefaultEndpointsProtocol=http, an http "
        "BlobEndpoint), an identity; behind a fake internet whose HTTP proxy records what it sees",
        "refused before any request; 0 requests in the clear; Azurite on loopback still reached over http", 4),
    Row("storage-concurrency", "Two sync down into one folder, two sync up of different content to one prefix, two "
        "staging flows with the same inputs: real concurrent processes on Azurite",
        "serialised (the second waits) or StorageBusyError; every published marker matches its blobs", 9),
    Row("sync-kill-resume", "taoflow sync down / sync up killed with SIGKILL at a seeded moment, then run again",
        "the re-run transfers only what was missing; no stale temporaries; byte-identical", 4),
    Row("storage-unreachable", "Storage on a refused loopback port and on an unresolvable host: sync, and a staging flow",
        "StorageUnreachableError after a bounded number of attempts; no task retry; no cache-key traceback", 3),
)
ROW_IDS = {row.id for row in ROWS}


def _path(row: str) -> Path:
    if row not in ROW_IDS:
        raise KeyError(f"unknown reliability row {row!r}")
    return RECORDS / f"{row}.json"


def load(row: str) -> dict | None:
    try:
        return json.loads(_path(row).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def record(row: str, *, trials: int, lost: int = 0, leaked: int = 0, crashed: int = 0,
           sums: dict[str, int] | None = None, **figures) -> dict:
    """Add `trials` to a row for this session, with its failures and figures (later figures win;
    `sums` are counts added to what this session recorded before). Workers of one parallel run add
    to the same row one at a time (a lock file beside the records)."""
    RECORDS.mkdir(parents=True, exist_ok=True)
    with open(RECORDS / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _add(row, trials, {"lost": lost, "leaked": leaked, "crashed": crashed}, sums or {}, figures)


def _add(row: str, trials: int, failures: dict[str, int], sums: dict[str, int], figures: dict) -> dict:
    current = load(row)
    if current is None or current.get("session") != SESSION:
        current = {"row": row, "session": SESSION, "trials": 0, "lost": 0, "leaked": 0, "crashed": 0, "figures": {}}
    current["trials"] += trials
    for name, value in failures.items():
        current[name] += value
    current["figures"].update(figures)
    for name, value in sums.items():
        current["figures"][name] = current["figures"].get(name, 0) + value
    temp = _path(row).with_suffix(".tmp")
    temp.write_text(json.dumps(current, indent=1, sort_keys=True))
    os.replace(temp, _path(row))
    return current


def this_session() -> dict[str, dict]:
    return {row.id: rec for row in ROWS if (rec := load(row.id)) and rec.get("session") == SESSION}


# --- the table ----------------------------------------------------------------------------


def _figures(rec: dict) -> str:
    def text(v):
        return f"{v:,}" if isinstance(v, int) else str(v)

    return "; ".join(f"{k.replace('_', ' ')} {text(v)}" for k, v in sorted(rec["figures"].items())) or "-"


def render(records: dict[str, dict]) -> str:
    lines = [
        "| Row | What was tried | Trials | What held | Lost / leaked / crashed | Figures (last run) |",
        "|---|---|---:|---|---|---|",
    ]
    for row in ROWS:
        rec = records.get(row.id)
        if rec is None:
            lines.append(f"| {row.id} | {row.tried} | not run | {row.held} | - | - |")
            continue
        bad = " / ".join(str(rec[k]) for k in BAD)
        lines.append(f"| {row.id} | {row.tried} | {rec['trials']:,} | {row.held} | {bad} | {_figures(rec)} |")
    return "\n".join(lines)


_ROW = re.compile(r"^\| (?P<id>[a-z0-9-]+) \| .*? \| (?P<trials>[\d,]+|not run) \| .*? \| "
                  r"(?P<bad>\d+ / \d+ / \d+|-) \| .*\|$")


def documented() -> dict[str, tuple[int | None, tuple[int, ...] | None]]:
    """{row: (trials, (lost, leaked, crashed))} as docs/reliability.md states them."""
    text = DOC.read_text(encoding="utf-8")
    table = text.split(START, 1)[1].split(END, 1)[0]
    found = {}
    for line in table.strip().splitlines()[2:]:
        m = _ROW.match(line.strip())
        if m is None:
            raise ValueError(f"docs/reliability.md: unreadable table row: {line!r}")
        trials = None if m["trials"] == "not run" else int(m["trials"].replace(",", ""))
        bad = None if m["bad"] == "-" else tuple(int(x) for x in m["bad"].split(" / "))
        found[m["id"]] = (trials, bad)
    return found


def disagreements(records: dict[str, dict]) -> list[str]:
    """Where the document and the recorded results differ (counts and failures; figures vary by run)."""
    doc = documented()
    out = []
    for row_id, rec in records.items():
        stated = doc.get(row_id)
        measured = (rec["trials"], tuple(rec[k] for k in BAD))
        if stated != measured:
            out.append(f"{row_id}: docs/reliability.md says {stated}, this run measured {measured}")
    return out


def rewrite_doc(records: dict[str, dict]) -> None:
    """Put the rendered table between the markers (rows not run now keep their last record)."""
    merged = {row.id: rec for row in ROWS if (rec := load(row.id))} | records
    text = DOC.read_text(encoding="utf-8")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    DOC.write_text(f"{head}{START}\n{render(merged)}\n{END}{tail}", encoding="utf-8")
