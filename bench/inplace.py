"""Blob settings of bench/validate.py: validating a dataset in place against downloading it first.

One run starts a private Azurite (its data kept under .cache/bench-validate/azurite-N, so the upload
happens once per N) holding N photo-like image/label pairs (bench/photos.py), and measures two settings:
(a) direct and (b) through bench/sync_proxy.py, +20 ms per request. In each, as separate processes
whose times include their start-up (what a user waits for):

- in place: `taoflow validate --data URL` (ranged reads of image headers, label files whole);
- download-then-validate: `taoflow sync down URL DIR`, then `taoflow validate --data DIR`;
- AzCopy + validate: `azcopy copy URL?SAS DIR --recursive`, then `taoflow validate --data DIR`.

Each prints its seconds, the content bytes it read from storage (in place: the bodies of its ranged
GETs; the downloads: every byte), the CPU seconds of the method, Azurite and the proxy, and whether
the in-place findings equal those of the local validator on the downloaded copy. Ratios are
download time / in-place time, measured in the same run.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache/bench-validate"
PREFIX = "photos"
SPEC = """\
dataset_config {
  data_sources { tfrecords_path: "/workspace/tfrecords/kitti-fold-*" image_directory_path: "/workspace/data" }
  image_extension: "jpg"
  target_class_mapping { key: "car" value: "car" }
  target_class_mapping { key: "van" value: "car" }
  target_class_mapping { key: "pedestrian" value: "pedestrian" }
  target_class_mapping { key: "cyclist" value: "cyclist" }
  validation_fold: 0
}
augmentation_config {
  preprocessing { output_image_width: 1248 output_image_height: 384 output_image_channel: 3
                  min_bbox_width: 1.0 min_bbox_height: 1.0 }
}
training_config {
  batch_size_per_gpu: 4
  num_epochs: 10
  visualizer { enabled: true scalar_logging_frequency: 10 infrequent_logging_frequency: 1 }
}
cost_function_config {
  target_classes { name: "car" }
  target_classes { name: "pedestrian" }
  target_classes { name: "cyclist" }
}
"""


def upload_once(conn: str, container: str, local: Path, info: dict) -> None:
    """The dataset under PREFIX/ in `container`, uploaded unless Azurite already holds this build."""
    from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
    from azure.storage.blob import BlobServiceClient

    from tasks.storage import StorageAccess, sync_up

    client = BlobServiceClient.from_connection_string(conn).get_container_client(container)
    try:
        client.create_container()
    except ResourceExistsError:
        pass
    stamp = client.get_blob_client("bench-stamp.json")
    try:
        if json.loads(stamp.download_blob().readall()) == info:
            return
    except ResourceNotFoundError:
        pass
    started = time.perf_counter()
    url = f"{conn.split('BlobEndpoint=')[1].rstrip(';')}/{container}/{PREFIX}"
    sync_up(local, url, access=StorageAccess(connection_string=conn))
    stamp.upload_blob(json.dumps(info), overwrite=True)
    print(f"uploaded {info['bytes'] / 1e9:.2f} GB to Azurite in {time.perf_counter() - started:.0f} s", flush=True)


def comparable(report: dict, root: str) -> str:
    data = {k: v for k, v in report.items() if k not in ("seconds", "summary", "reads")}
    return json.dumps(data, sort_keys=True).replace(root.rstrip("/"), "<root>")


class Blob:
    """One setting: the endpoint (Azurite or the proxy), and how to run each method against it."""

    def __init__(self, key: str, title: str, port: int, container: str, work: Path, spec: Path, azcopy,
                 watch: dict[str, int | None]) -> None:
        from sync import connection_string, container_sas

        self.key, self.title, self.port, self.work, self.spec = key, title, port, work, spec
        self.azcopy, self.watch = azcopy, watch
        self.conn = connection_string(port)
        self.url = f"http://127.0.0.1:{port}/devstoreaccount1/{container}/{PREFIX}"
        self.sas = container_sas(container) if azcopy else ""
        self.rows: dict[str, dict] = {}

    def _settle(self) -> None:
        """Wait until Azurite is idle (it saves its metadata in the background after an upload or a
        burst of requests), so its CPU is charged to the method that caused it."""
        from sync import process_cpu

        pid = self.watch["azurite"]
        last = process_cpu(pid)
        for _ in range(60):
            time.sleep(1.0)
            now = process_cpu(pid)
            if now - last < 0.02:
                return
            last = now

    def _run(self, argv: list[str]) -> tuple[subprocess.CompletedProcess, dict]:
        from sync import process_cpu

        self._settle()
        env = dict(os.environ, AZURE_STORAGE_CONNECTION_STRING=self.conn, PREFECT_LOGGING_LEVEL="WARNING",
                   AZCOPY_LOG_LOCATION=str(self.work / "azcopy-logs"),
                   AZCOPY_JOB_PLAN_LOCATION=str(self.work / "azcopy-plans"))
        os.sync()
        before_self = os.times()
        before = {k: process_cpu(pid) for k, pid in self.watch.items()}
        started = time.perf_counter()
        done = subprocess.run(argv, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        after_self = os.times()
        cpu = {"seconds": seconds,
               "cpu": (after_self.children_user - before_self.children_user
                       + after_self.children_system - before_self.children_system)}
        cpu.update({k: process_cpu(pid) - before[k] for k, pid in self.watch.items()})
        if done.returncode not in (0, 1):  # 1: the dataset has (planted) errors
            raise SystemExit(f"{argv[:3]} failed ({done.returncode}): {(done.stderr or done.stdout)[-2000:]}")
        return done, cpu

    def validate(self, data: str) -> tuple[dict, dict]:
        taoflow = str(Path(sys.executable).with_name("taoflow"))
        done, cost = self._run([taoflow, "validate", "--spec", str(self.spec), "--data", data, "--json"])
        return json.loads(done.stdout), cost

    def in_place(self) -> None:
        report, cost = self.validate(self.url)
        self.rows["in place"] = {**cost, "bytes": report["reads"]["bytes"], "requests": report["reads"]["requests"],
                                 "report": report}
        self._say("in place", self.rows["in place"])

    def download_then_validate(self, method: str) -> None:
        dest = self.work / f"{self.key}-{method.split()[0]}"
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        if method.startswith("azcopy"):
            done, fetch = self._run([str(self.azcopy), "copy", f"{self.url}?{self.sas}", str(dest), "--recursive",
                                     "--from-to", "BlobLocal"])
            local = dest / PREFIX
        else:
            taoflow = str(Path(sys.executable).with_name("taoflow"))
            done, fetch = self._run([taoflow, "sync", "down", self.url, str(dest), "--json"])
            local = dest
        files = [p for p in local.rglob("*") if p.is_file() and not p.name.startswith(".")]
        read = sum(p.stat().st_size for p in files)
        report, check = self.validate(str(local))
        same = comparable(report, str(local)) == comparable(self.rows["in place"]["report"], self.url)
        row = {k: fetch[k] + check[k] for k in fetch}
        row.update(bytes=read, requests=len(files), fetch=fetch["seconds"], check=check["seconds"], same=same)
        self.rows[method] = row
        self._say(method, row)
        shutil.rmtree(dest)

    def _say(self, method: str, row: dict) -> None:
        extra = f" (fetch {row['fetch']:.1f} s + validate {row['check']:.1f} s)" if "fetch" in row else ""
        print(f"  [{self.key}] {method}: {row['seconds']:.2f} s{extra}, {row['bytes'] / 1e6:.1f} MB read in "
              f"{row['requests']} GETs; CPU "
              f"{row['cpu']:.1f} s, Azurite {row['azurite']:.1f} s" + (f", proxy {row['proxy']:.1f} s"
                                                                       if "proxy" in row else ""), flush=True)

    def table(self, total: int) -> list[str]:
        base = self.rows["in place"]["seconds"]
        lines = []
        for method, row in self.rows.items():
            cpu = f"{row['cpu']:.1f} / {row['azurite']:.1f}" + (f" / {row['proxy']:.1f}" if "proxy" in row else "")
            ratio = "1.00" if method == "in place" else f"in place **{row['seconds'] / base:.1f}x** faster"
            same = "" if method == "in place" else ("identical" if row["same"] else "**DIFFER**")
            per = row["azurite"] / row["requests"] * 1000
            lines.append(f"| {self.title} | {method} | {row['seconds']:.1f} | {row['bytes'] / 1e6:,.1f} "
                         f"({row['bytes'] / total:.2%}) | {row['requests']:,} ({per:.1f} ms) | {cpu} | {ratio} "
                         f"| {same} |")
        return lines


def run(pairs: int, delay: float, settings: str) -> int:
    sys.path.insert(0, str(ROOT / "bench"))
    from photos import build
    from sync import TOOLS, ensure_azcopy
    from sync_proxy import latency_proxy

    from tests.fixtures.services import Azurite

    local = CACHE / f"photos-{pairs}"
    started = time.perf_counter()
    info = build(local, pairs)
    print(f"dataset: {pairs} pairs, {info['bytes'] / 1e9:.2f} GB ({time.perf_counter() - started:.0f} s to build or "
          f"find); planted: {', '.join(info['faults'])}", flush=True)
    azcopy, version = ensure_azcopy()
    print(f"AzCopy: {version}" if azcopy else f"AzCopy skipped: {version}", flush=True)
    work = CACHE / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    spec = work / "spec.txt"
    spec.write_text(SPEC)
    azurite = Azurite(binary=str(TOOLS / "node_modules/.bin/azurite-blob"), location=CACHE / f"azurite-{pairs}")
    azurite.location.mkdir(parents=True, exist_ok=True)
    done: list[Blob] = []
    load_before = os.getloadavg()
    container = f"photos{pairs}"
    try:
        azurite.start()
        upload_once(azurite.connection_string, container, local, {k: info[k] for k in ("version", "pairs", "bytes")})
        watch = {"azurite": azurite.process.pid}
        for key in settings:
            with contextlib.ExitStack() as stack:
                if key == "b":
                    port, pid = stack.enter_context(latency_proxy(azurite.port, delay))
                    setting = Blob("b", f"(b) +{round(delay * 1000)} ms/request", port, container, work, spec,
                                   azcopy, {**watch, "proxy": pid})
                else:
                    setting = Blob("a", "(a) direct", azurite.port, container, work, spec, azcopy, watch)
                setting.in_place()
                setting.download_then_validate("taoflow sync down + validate")
                if azcopy:
                    setting.download_then_validate("azcopy copy + validate")
                done.append(setting)
    finally:
        azurite.stop()
        shutil.rmtree(work, ignore_errors=True)
    load_after = os.getloadavg()
    print(f"\n{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, load average {load_before[0]:.1f} before and "
          f"{load_after[0]:.1f} after; {pairs} pairs, {info['bytes'] / 1e9:.2f} GB; AzCopy "
          f"{version if azcopy else 'skipped'}; one run of each method")
    print("\n| setting | method | seconds | MB read (of the dataset) | GETs (Azurite CPU per GET) "
          "| CPU s: method / Azurite [/ proxy] | ratio | findings vs in place |")
    print("| --- | --- | ---: | ---: | ---: | ---: | --- | --- |")
    for setting in done:
        print("\n".join(setting.table(info["bytes"])))
    failed = []
    for setting in done:
        place = setting.rows["in place"]
        if place["bytes"] > 0.02 * info["bytes"]:
            failed.append(f"{setting.key}: bytes read {place['bytes'] / info['bytes']:.2%} > 2 %")
        for method, row in setting.rows.items():
            if method != "in place" and not row["same"]:
                failed.append(f"{setting.key}: findings differ from {method}")
            if setting.key == "b" and method != "in place" and row["seconds"] < 10 * place["seconds"]:
                failed.append(f"b: in place is {row['seconds'] / place['seconds']:.1f}x faster than {method} (< 10x)")
    print("\ntargets: " + ("all met" if not failed else "MISSED: " + "; ".join(failed)))
    return 1 if failed else 0
