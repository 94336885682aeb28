"""Benchmark: `taoflow sync down` against AzCopy, plain SDK loops and prefect-azure, in one run.

One run starts a private Azurite and measures five settings:

- (a) direct: N blobs of 20-200 KB (a dataset's images and labels);
- (b) the same through bench/sync_proxy.py, which adds 20 ms to every request (a nearby region);
- (c) direct, M blobs of 2-20 MB (base models, TFRecord shards);
- (d) direct, H blobs of 2 GiB (pretrained models, big TFRecord shards), uploaded in blocks with
  their Content-MD5 set (as `taoflow sync up` publishes them), so every tool checks it;
- (e) the small blobs of (a) through a second proxy adding 50 ms to every request (another region).

In each: AzCopy `copy` (first sync) and `sync` (unchanged re-sync), our `taoflow sync down`
(first, then unchanged) and a 16-thread SDK loop; in (a)-(c) also a sequential SDK loop and
prefect-azure's `download_folder_to_path` (in (d) and (e) they would take minutes and show
nothing new). **Every method runs as its own process and its time includes that
process's start-up** (AzCopy's CLI, our CLI, a Python interpreter importing the SDK): what a
user waits for. AzCopy gets a SAS URL and `--from-to BlobLocal`; it checks MD5s as we do (its
default `--check-md5 FailIfDifferent`). The fast methods run `--repeat` times, interleaved, and
the median is shown; the two sequential ones once. The CPU seconds of the method's process,
of Azurite and of the proxy are recorded too: on 2 cores they say who the limit is. Last, our
`sync_down` runs twice inside this process (a flow worker's re-sync, without start-up), and
`--profile` maps our client's CPU per file (bench/sync_profile.py).

AzCopy comes from npm (`@azure-tools/azcopy-linux`, the real binary) into `.cache/tools`; it
needs `libsecret-1-0`, installed with apt-get when missing and run as root. If it cannot be
installed, its rows are skipped with one line saying why.

    .venv/bin/python bench/sync.py                        # 2,000 small, 200 large, 2 huge blobs
    .venv/bin/python bench/sync.py --blobs 300 --large 20 --huge-size 0.2 --repeat 1   # a quick run
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sync_data import PREFIX, fill, fill_huge

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: Transfer threads while profiling: enough to show thread overhead, few enough to keep the profile readable.
PROFILE_THREADS = 4
TOOLS = ROOT / ".cache/tools"
AZCOPY_PACKAGE = "@azure-tools/azcopy-linux@10.32"
AZCOPY = TOOLS / "node_modules/@azure-tools/azcopy-linux/dist/bin/azcopy_linux_amd64"
LABELS = {
    "azcopy copy": "AzCopy `copy`",
    "taoflow first": "taoflow `sync down`, first",
    "azcopy sync": "AzCopy `sync`, unchanged",
    "taoflow again": "taoflow `sync down`, unchanged re-sync",
    "16-thread SDK loop": "16-thread SDK loop",
    "sequential SDK loop": "sequential SDK loop",
    "prefect-azure": "prefect-azure `download_folder_to_path`",
    "in process": "taoflow `sync_down` in a running process, unchanged re-sync",
}


def connection_string(port: int) -> str:
    # Imported here, not at the top: the workers must not import the test fixtures (pytest), or a
    # baseline's start-up would be slower than it really is.
    from tests.fixtures.services import AZURITE_KEY

    return (
        f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={AZURITE_KEY};"
        f"BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
    )


# --- the Python baselines, each run in a fresh process (`--worker NAME CONN CONTAINER DEST`) ----


def _container(conn: str, name: str, pool: int):
    import requests
    from azure.storage.blob import BlobServiceClient

    session = requests.Session()
    session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=pool))
    return BlobServiceClient.from_connection_string(conn, session=session).get_container_client(name)


def sdk_loop(conn: str, container_name: str, dest: Path, threads: int) -> None:
    """The plain loop an SDK user writes: list, then download_blob(...).readinto(file)."""
    container = _container(conn, container_name, threads + 2)
    names = [b.name for b in container.list_blobs(name_starts_with=PREFIX + "/")]

    def one(name: str) -> None:
        path = dest / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as out:
            container.download_blob(name).readinto(out)

    if threads == 1:
        for name in names:
            one(name)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(one, names))


def prefect_azure(conn: str, container_name: str, dest: Path) -> None:
    from prefect_azure import AzureBlobStorageContainer, AzureBlobStorageCredentials

    block = AzureBlobStorageContainer(
        container_name=container_name, credentials=AzureBlobStorageCredentials(connection_string=conn)
    )
    block.download_folder_to_path(PREFIX, dest)


def worker(name: str, conn: str, container_name: str, dest: str) -> None:
    target = Path(dest)
    if name == "prefect-azure":
        prefect_azure(conn, container_name, target)
    else:
        sdk_loop(conn, container_name, target, 16 if name.startswith("16") else 1)


# --- AzCopy ---------------------------------------------------------------------------------


def ensure_azcopy() -> tuple[Path | None, str]:
    """(the azcopy binary, its version) or (None, why it is missing)."""
    if not AZCOPY.exists():
        if shutil.which("npm") is None:
            return None, "npm is not installed"
        TOOLS.mkdir(parents=True, exist_ok=True)
        print(f"installing AzCopy from npm ({AZCOPY_PACKAGE}) into {TOOLS}", flush=True)
        done = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent", AZCOPY_PACKAGE],
                              cwd=TOOLS, capture_output=True, text=True)
        if done.returncode != 0 or not AZCOPY.exists():
            return None, f"npm install {AZCOPY_PACKAGE} failed: {(done.stderr or done.stdout).strip()[-300:]}"
    AZCOPY.chmod(0o755)  # npm does not keep the executable bit of this file
    version = subprocess.run([str(AZCOPY), "--version"], capture_output=True, text=True)
    if "libsecret" in version.stderr and os.geteuid() == 0 and shutil.which("apt-get"):
        print("installing libsecret-1-0 (AzCopy links it) with apt-get", flush=True)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "libsecret-1-0"],
                       env=env, capture_output=True)
        version = subprocess.run([str(AZCOPY), "--version"], capture_output=True, text=True)
    if version.returncode != 0:
        return None, f"{AZCOPY} does not run: {version.stderr.strip()[:300]}"
    return AZCOPY, version.stdout.strip()


def container_sas(container_name: str) -> str:
    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    from tests.fixtures.services import AZURITE_KEY

    return generate_container_sas(
        "devstoreaccount1", container_name, account_key=AZURITE_KEY,
        permission=ContainerSasPermissions(read=True, list=True),
        expiry=datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1),
    )


# --- measuring ------------------------------------------------------------------------------


def process_cpu(pid: int | None) -> float:
    """User + system CPU seconds of a running process (0 if unknown)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Setting:
    """One (endpoint, container) pair and how to run every method against it."""

    def __init__(self, key: str, title: str, port: int, container: str, total: int, work: Path,
                 azcopy: Path | None, watch: dict[str, int | None], slow: bool = True) -> None:
        self.key, self.title, self.port, self.container, self.total = key, title, port, container, total
        self.work, self.azcopy, self.watch, self.slow = work, azcopy, watch, slow
        self.conn = connection_string(port)
        self.url = f"http://127.0.0.1:{port}/devstoreaccount1/{container}/{PREFIX}"
        self.samples: dict[str, list[dict]] = {}
        self.profile = ""
        self.sas = container_sas(container) if azcopy else ""

    def command(self, method: str, dest: Path) -> list[str]:
        if method.startswith("azcopy"):
            verb = method.split()[1]
            target = dest if verb == "copy" else dest / PREFIX  # copy makes DEST/data, sync mirrors into it
            return [str(self.azcopy), verb, f"{self.url}?{self.sas}", str(target), "--recursive",
                    "--from-to", "BlobLocal"]
        if method.startswith("taoflow"):
            return [str(Path(sys.executable).with_name("taoflow")), "sync", "down", self.url, str(dest), "--json"]
        return [sys.executable, __file__, "--worker", method, self.conn, self.container, str(dest)]

    def env(self) -> dict[str, str]:
        return dict(os.environ, AZURE_STORAGE_CONNECTION_STRING=self.conn, PREFECT_LOGGING_LEVEL="WARNING",
                    AZCOPY_LOG_LOCATION=str(self.work / "azcopy-logs"),
                    AZCOPY_JOB_PLAN_LOCATION=str(self.work / "azcopy-plans"))

    def run(self, method: str, dest: Path) -> dict:
        env = self.env()
        os.sync()  # the last method's written data must not be flushed on this one's time
        before_cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
        before = {k: process_cpu(pid) for k, pid in self.watch.items()}
        started = time.perf_counter()
        done = subprocess.run(self.command(method, dest), env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        after_cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0:
            raise SystemExit(f"{method} failed ({done.returncode}): {(done.stderr or done.stdout)[-2000:]}")
        sample = {"seconds": seconds, "user": after_cpu.ru_utime - before_cpu.ru_utime,
                  "sys": after_cpu.ru_stime - before_cpu.ru_stime}
        sample["cpu"] = sample["user"] + sample["sys"]
        sample.update({f"{k} cpu": process_cpu(pid) - before[k] for k, pid in self.watch.items()})
        if method.startswith("taoflow"):
            report = json.loads(done.stdout)
            if method == "taoflow again" and report["bytes_transferred"]:
                raise SystemExit("an unchanged re-sync must transfer nothing")
        if method == "azcopy sync" and "Total Number of Copy Transfers: 0" not in done.stdout:
            raise SystemExit(f"azcopy sync transferred something: {done.stdout[-1500:]}")
        self.samples.setdefault(method, []).append(sample)
        return sample

    def round(self, n: int, slow: bool) -> None:
        """One interleaved round of every method (`slow`: the sequential ones too)."""
        # Each tool's first sync starts from the same state: every earlier output deleted and
        # flushed (a 2 GB folder still in the page cache, or being deleted, changes the next
        # writer's system time by seconds). The order of the tools rotates from round to round.
        groups = [["azcopy copy", "azcopy sync"], ["taoflow first", "taoflow again"], ["16-thread SDK loop"]]
        groups = groups[n % 3:] + groups[:n % 3]
        if slow and self.slow:
            groups += [["sequential SDK loop"], ["prefect-azure"]]
        for group in groups:
            if group[0].startswith("azcopy") and self.azcopy is None:
                continue
            dest = self.work / f"{self.key}-{n}-{group[0].split()[0]}"
            dest.mkdir(parents=True)
            for method in group:
                sample = self.run(method, dest)
                print(f"  [{self.key}] {method}: {sample['seconds']:.2f} s (CPU {sample['user']:.2f} user + "
                      f"{sample['sys']:.2f} sys; Azurite {sample['azurite cpu']:.2f})", flush=True)
            shutil.rmtree(dest)

    def in_process(self) -> None:
        """Our `sync_down` twice in this process, the SDK already imported: how a flow worker stages
        its inputs run after run (the CLI figures also carry the interpreter's and the SDK's start-up)."""
        import azure.storage.blob  # noqa: F401 - imported once per worker process, not per sync

        from tasks.storage import StorageAccess, sync_down

        access = StorageAccess(connection_string=self.conn)
        dest = self.work / f"{self.key}-in-process"
        os.sync()
        first = sync_down(self.url, dest, access=access)
        again = sync_down(self.url, dest, access=access)
        if again.bytes_transferred:
            raise SystemExit("an unchanged re-sync must transfer nothing")
        self.samples["in process"] = [{"seconds": again.seconds, "first": first.seconds}]
        print(f"  [{self.key}] in process: first {first.seconds:.2f} s, unchanged {again.seconds:.2f} s", flush=True)
        shutil.rmtree(dest)

    def median(self, method: str, key: str = "seconds") -> float | None:
        values = [s[key] for s in self.samples.get(method, []) if key in s]
        return statistics.median(values) if values else None

    def rows(self) -> list[str]:
        first = self.median("taoflow first")
        lines = []
        for method in ("azcopy copy", "taoflow first", "16-thread SDK loop", "sequential SDK loop", "prefect-azure",
                       "azcopy sync", "taoflow again", "in process"):
            seconds = self.median(method)
            if seconds is None:
                continue
            cpu = self.median(method, "cpu")
            server = self.median(method, "azurite cpu")
            proxy = self.median(method, "proxy cpu")
            unchanged = method in ("azcopy sync", "taoflow again", "in process")
            rate = "-" if unchanged else f"{self.total / seconds / 1e6:.1f}"
            if method == "taoflow first":
                ratio = "1.00"
            elif method == "taoflow again":
                ratio = f"**{seconds / first:.0%}** of first"
            elif method == "in process":
                before = self.median(method, "first")
                ratio = f"**{seconds / before:.1%}** of a first sync in that process ({before:.2f} s)"
            elif method == "azcopy sync":
                ratio = f"ours **{seconds / self.median('taoflow again'):.1f}x** faster"
            else:
                ratio = f"**{seconds / first:.2f}**"
            cpus = "-" if cpu is None else f"{cpu:.2f} / {server:.2f}" + ("" if proxy is None else f" / {proxy:.2f}")
            lines.append(f"| {self.title} | {LABELS[method]} | {seconds:.2f} | {rate} | {cpus} | {ratio} |")
        return lines


def run_setting(setting: Setting, repeat: int, profile: bool) -> None:
    for n in range(repeat):
        setting.round(n, slow=(n == 0))
    setting.in_process()
    if profile and setting.key not in "be":  # (b) and (e) spend the same CPU as (a), plus waiting
        from sync_profile import profile_sync, render

        # The 2 GiB blobs need no warm-up sync: imports and connections are nothing next to them.
        found = profile_sync(setting.url, setting.conn, PROFILE_THREADS, warm=setting.key != "d")
        setting.profile = render(setting.title, *found)
        if setting.key == "a":  # the CLI's unchanged re-sync taken apart (left in `work`, removed at the end)
            from sync_startup import startup_profile

            runs = [setting.command(f"taoflow {which}", setting.work / "a-startup") for which in ("first", "again")]
            setting.profile += "\n" + startup_profile(*runs, setting.env())
        print(setting.profile, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blobs", type=int, default=2000, help="small blobs (20-200 KB) in settings (a), (b), (e)")
    parser.add_argument("--large", type=int, default=200, help="large blobs (2-20 MB) in setting (c)")
    parser.add_argument("--huge", type=int, default=2, help="huge blobs in setting (d)")
    parser.add_argument("--huge-size", type=float, default=2.0, help="GiB per huge blob in setting (d)")
    parser.add_argument("--delay", type=float, default=0.02, help="seconds added per request in setting (b)")
    parser.add_argument("--far-delay", type=float, default=0.05, help="seconds added per request in setting (e)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of the fast methods (median shown)")
    parser.add_argument("--settings", default="abcde", help="which settings to run")
    parser.add_argument("--profile", action="store_true",
                        help="also profile our client's CPU per file in (a), (c), (d) (bench/sync_profile.py)")
    parser.add_argument("--worker", nargs=4, metavar=("METHOD", "CONN", "CONTAINER", "DEST"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker)
        return

    from sync_proxy import latency_proxy

    from tests.fixtures.services import Azurite

    azcopy, version = ensure_azcopy()
    print(f"AzCopy: {version}" if azcopy else f"AzCopy skipped: {version}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="taoflow-bench-sync-"))
    azurite = Azurite(binary=str(TOOLS / "node_modules/.bin/azurite-blob"), location=work / "azurite")
    azurite.location.mkdir()
    settings: list[Setting] = []
    load_before = os.getloadavg()
    wanted = set(args.settings)
    try:
        azurite.start()
        conn, watch = azurite.connection_string, {"azurite": azurite.process.pid}
        small = fill(conn, "small", args.blobs, 20_000, 200_000) if wanted & set("abe") else 0
        large = fill(conn, "large", args.large, 2_000_000, 20_000_000) if "c" in wanted else 0
        huge = fill_huge(conn, "huge", args.huge, round(args.huge_size * (1 << 30))) if "d" in wanted else 0
        print(f"Azurite: {args.blobs} blobs, {small / 1e6:.0f} MB (small); {args.large} blobs, "
              f"{large / 1e6:.0f} MB (large); {args.huge} blobs, {huge / 1e6:.0f} MB (huge)", flush=True)
        plan = [("a", "(a) direct", "small", None), ("b", f"(b) +{round(args.delay * 1000)} ms/request", "small",
                args.delay), ("c", "(c) large files", "large", None), ("d", "(d) 2 GiB files", "huge", None),
                ("e", f"(e) +{round(args.far_delay * 1000)} ms/request", "small", args.far_delay)]
        for key, title, container, delay in plan:
            if key not in wanted:
                continue
            total = {"small": small, "large": large, "huge": huge}[container]
            with contextlib.ExitStack() as stack:
                port, seen = azurite.port, dict(watch)
                if delay is not None:
                    port, seen["proxy"] = stack.enter_context(latency_proxy(azurite.port, delay))
                settings.append(Setting(key, title, port, container, total, work, azcopy, seen, slow=key in "abc"))
                run_setting(settings[-1], args.repeat, args.profile)
    finally:
        azurite.stop()
        shutil.rmtree(work, ignore_errors=True)

    load_after = os.getloadavg()
    print(f"\n{datetime.date.today()}, {os.cpu_count()} cores, load average {load_before[0]:.1f} before and "
          f"{load_after[0]:.1f} after; AzCopy {version if azcopy else 'skipped'}; median of {args.repeat} "
          "(sequential loop and prefect-azure: 1 run)")
    print("\n| setting | method | seconds | MB/s | CPU s: method / Azurite [/ proxy] | ratio |")
    print("| --- | --- | ---: | ---: | ---: | --- |")
    for setting in settings:
        print("\n".join(setting.rows()))
    print("\nratio: the method's time / our first sync's time (> 1: we are faster); every time includes the "
          "process's start-up.")
    print("".join(f"\n{setting.profile}" for setting in settings if setting.profile))


if __name__ == "__main__":
    main()
