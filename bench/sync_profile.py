"""Where our sync's client CPU goes, per file: `sync_down` run in this process under a CPU profile.

Every thread (the main one and each transfer thread) gets its own `cProfile.Profile` timed by
`time.thread_time`, so what is counted is CPU the thread used, not time it waited (for the GIL,
the network or the disk). The functions' own times are summed into a few categories. The
profiler slows Python code down several times and C calls (hashing, system calls) not at all,
so the shares are a map, not a stopwatch; the CPU time per file of a run *without* the profiler
is measured next to it (process CPU, same sync into a fresh folder).

Used by `bench/sync.py --profile`; runs on its own too:

    .venv/bin/python bench/sync_profile.py LOCATION CONNECTION_STRING [CONCURRENCY]
"""

from __future__ import annotations

import cProfile
import pstats
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

CATEGORIES = (
    ("MD5 (hashlib)", ("_hashlib.HASH",)),
    ("socket send/receive (kernel)", ("_socket.socket",)),
    ("reading ranges back for the MD5 (kernel)", ("built-in method posix.preadv",)),
    ("local files: create, write, rename (kernel)", ("_io.BufferedWriter", "built-in method posix.", "_io.open")),
    ("HTTP client: urllib3, http.client", ("urllib3/", "http/client.py", "email/", "/socket.py")),
    ("requests", ("requests/",)),
    ("Azure SDK: pipeline, signing, models", ("azure/",)),
    ("taoflow: sync logic, staging, manifest, transport", ("tasks/storage/",)),
    ("threads and thread pool", ("threading.py", "concurrent/futures/")),
)
REST = "the rest"


def categorize(stats: pstats.Stats) -> Counter:
    """Profiled CPU seconds by category. A function in none of them (a builtin, os.environ, json,
    urllib.parse...) is charged to its callers' categories, pro rata to what each call cost."""
    table = stats.stats  # type: ignore[attr-defined]
    memo: dict = {}

    def direct(func) -> str | None:
        where = f"{func[0]} {func[2]}"
        return next((name for name, keys in CATEGORIES if any(k in where for k in keys)), None)

    def shares(func, seen: frozenset) -> Counter:
        if func in memo:
            return memo[func]
        found = direct(func)
        callers = table.get(func, (0, 0, 0, 0, {}))[4]
        weight = sum(v[2] for c, v in callers.items() if c not in seen)
        if found or not weight:
            result = Counter({found or REST: 1.0})
        else:
            result = Counter()
            for caller, v in callers.items():
                if caller not in seen and v[2]:
                    for name, part in shares(caller, seen | {func}).items():
                        result[name] += part * v[2] / weight
        memo[func] = result
        return result

    totals: Counter = Counter()
    for func, (_, _, own, _, _) in table.items():
        for name, part in shares(func, frozenset()).items():
            totals[name] += own * part
    return totals


def profile_sync(location: str, conn: str, concurrency: int, warm: bool = True) -> tuple[int, int, float, Counter]:
    """(files, bytes, client CPU seconds per file without the profiler, profiled CPU seconds by category).

    `warm`: first one sync that is not measured (imports, connections)."""
    from tasks.storage import StorageAccess, sync_down

    access = StorageAccess(connection_string=conn)
    work = Path(tempfile.mkdtemp(prefix="taoflow-profile-"))
    try:
        if warm:
            sync_down(location, work / "warm", access=access, concurrency=concurrency)
            shutil.rmtree(work / "warm")
        started = time.process_time()
        report = sync_down(location, work / "plain", access=access, concurrency=concurrency)
        per_file = (time.process_time() - started) / max(report.files_transferred, 1)
        shutil.rmtree(work / "plain")
        profiles: list[cProfile.Profile] = []
        original = threading.Thread.run

        def run(self) -> None:
            profile = cProfile.Profile(time.thread_time)
            profiles.append(profile)
            profile.enable()
            try:
                original(self)
            finally:
                profile.disable()

        threading.Thread.run = run
        main = cProfile.Profile(time.thread_time)
        try:
            main.enable()
            sync_down(location, work / "profiled", access=access, concurrency=concurrency)
            main.disable()
        finally:
            threading.Thread.run = original
    finally:
        shutil.rmtree(work, ignore_errors=True)
    stats = pstats.Stats(main)
    for profile in profiles:
        stats.add(profile)
    return report.files_transferred, report.bytes_transferred, per_file, categorize(stats)


def render(title: str, files: int, size: int, per_file: float, totals: Counter) -> str:
    whole = sum(totals.values()) or 1.0
    per_mb = per_file * files / max(size / 1e6, 1e-9)
    lines = [f"{title}: {files} files, {size / 1e6:,.0f} MB; client CPU without the profiler {per_file * 1000:.2f} ms "
             f"per file, {per_mb * 1000:.2f} ms per MB; share of the profiled CPU:"]
    lines += [f"  {share / whole:6.1%}  {name}" for name, share in totals.most_common()]
    return "\n".join(lines)


if __name__ == "__main__":
    try:
        import tasks.storage  # noqa: F401 - whichever taoflow is installed (or first on PYTHONPATH)
    except ImportError:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    loc, connection = sys.argv[1], sys.argv[2]
    threads = int(sys.argv[3]) if len(sys.argv) > 3 else 4
    print(render(loc, *profile_sync(loc, connection, threads)))
