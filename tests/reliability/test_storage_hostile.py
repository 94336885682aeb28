"""Hostile folders and hostile locations against the real storage layer.

- storage-symlinks: a real container (the stand-in TAO image on dockerd, as root) plants
  symlinks to host files and folders, a dangling symlink, a FIFO and a device in a results
  folder; the flow's publish task uploads it to Azurite, the folder is synced down and staged.
  inotify on the host-side tree is the witness that nothing there was opened or written.
- storage-endpoints: `taoflow sync down` in its own process, with the real DefaultAzureCredential
  getting tokens from a fake managed-identity endpoint, and every host reachable only through a
  TLS-intercepting proxy (tests/storage/fake_azure.py): no token may be requested for, and no
  request may reach, a host that is not an Azure Storage endpoint or the configured one.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from prefect import flow

from tasks.job.workspace import Workspace, stage_input
from tasks.storage import sync_down
from tasks.storage.sync_tasks import sync_up_task
from tests.reliability import ledger
from tests.storage.fake_azure import FAKE_TOKEN, FakeInternet
from tests.storage.helpers import access_for, blob_tree, location_of, read_tree
from tests.storage.hostile_fs import SECRET, OutsideWatch, make_outside

pytestmark = pytest.mark.services

RESULTS = {"weights/resnet18_detector.hdf5": b"H" * 20_000, "status.json": b'{"status": "SUCCESS"}\n',
           "experiment_dir_unpruned/model.epoch-1.ckzip": b"C" * 5_000}


def _plant_script(outside) -> str:
    """What a hostile trainer leaves behind, as shell run inside its container (host paths as link text)."""
    writes = " && ".join(f"mkdir -p /results/{os.path.dirname(n) or '.'} && printf %s '{d.decode()[:40]}' "
                         f"> /results/{n}" for n, d in RESULTS.items())
    return (f"{writes} && ln -s {outside}/etc/shadow /results/weights/resnet18_detector_best.hdf5"
            f" && ln -s {outside}/etc /results/etc"
            " && ln -s /results/no-such-checkpoint /results/experiment_dir_unpruned/model.epoch-2.ckzip"
            f" && ln -s ../../etc/keys/id_rsa /results/experiment_dir_unpruned/latest"
            " && mkfifo /results/train.pipe"
            " && (mknod /results/zero.dev c 1 5 || true)")


def test_a_trainer_planting_symlinks_and_fifos_cannot_make_taoflow_read_the_host(
        prefect_api, docker_client, standin_image, azurite, blob_container, tmp_path):
    outside = make_outside(tmp_path / "host")
    results = tmp_path / "results"
    results.mkdir()
    docker_client.containers.run(standin_image, ["sh", "-c", _plant_script(outside)], remove=True,
                                 network_mode="none", volumes={str(results): {"bind": "/results", "mode": "rw"}})
    expected = {n: d.decode()[:40].encode() for n, d in RESULTS.items()}
    planted = [p for p in results.rglob("*") if p.is_symlink() or not (p.is_file() or p.is_dir())]
    assert len(planted) >= 5, planted
    location = location_of(azurite, blob_container, "models/app/run1")
    access = access_for(azurite)

    @flow(name="reliability-publish-hostile-results")
    def publish():
        return sync_up_task(str(results), location, access)

    outcomes = {}
    with OutsideWatch(outside) as watch:
        state = publish(return_state=True)
        outcomes["publish"] = state.is_completed()
        outcomes["sync down"] = sync_down(results, tmp_path / "copy").not_followed
        outcomes["staging"] = stage_input("training_data", str(results), Workspace(tmp_path / "home")).not_followed
        touched = watch.touched()
    assert touched == [], touched
    assert outcomes["publish"], state.message
    published = blob_tree(blob_container, "models/app/run1")
    published.pop("_taoflow_published.json")
    assert published == expected and read_tree(tmp_path / "copy") == expected
    assert len(outcomes["sync down"]) == len(outcomes["staging"]) == len(planted)
    leaked = sum(SECRET in data for data in published.values()) + len(touched)
    warnings = _warnings_of(state.state_details.flow_run_id)
    assert any("not followed" in w and "resnet18_detector_best.hdf5 (symlink ->" in w for w in warnings), warnings
    ledger.record("storage-symlinks", trials=len(planted) * 3, leaked=leaked, crashed=int(not outcomes["publish"]),
                  planted=len(planted), operations=3, outside_events=len(touched))


def _warnings_of(flow_run_id) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    time.sleep(2)  # logs reach the API in batches
    with get_client(sync_client=True) as client:
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
    return [log.message for log in logs if log.level >= 30]


HOSTILE = [
    "https://acct12.blob.evil.example/models/run1",
    "https://acct12.blob.core.windows.net.evil.example/models/run1",
    "https://acct12.blob.core.windows.net@evil.example/models/run1",
    "https://acct12.blob.core.windows.net:8443/models/run1",
    "abfss://models@acct12.dfs.evil.example/run1",
    "https://127.0.0.1:{tls}/acct12/models/run1",
    "https://localhost:{tls}/acct12/models/run1",
    "https://evil.example/acct12/models/run1",
]


def _sync_down(location: str, env: dict, dest, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "taoflow", "sync", "down", location, str(dest), *args],
                          env=env, capture_output=True, text=True, timeout=180)


def test_storage_credentials_reach_only_storage_endpoints(prefect_api, tmp_path):
    from prefect_azure import AzureBlobStorageCredentials

    with FakeInternet(tmp_path) as net:
        env = net.env(dict(os.environ))
        refused = []
        for i, template in enumerate(HOSTILE):
            done = _sync_down(template.format(tls=net.tls_port), env, tmp_path / f"d{i}")
            assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
            refused.append("refusing to send storage credentials" in done.stderr or "cannot use location" in done.stderr)
        leaked = net.credentials_seen() + net.connects
        assert all(refused) and leaked == [], (refused, leaked)
        assert not any((tmp_path / f"d{i}").exists() for i in range(len(HOSTILE)))

        # The same fake would have seen them: a real Azure endpoint (through the proxy) ...
        cloud = _sync_down("https://acct12.blob.core.windows.net/models/run1", env, tmp_path / "cloud")
        assert "StorageAuthError" in cloud.stderr or "access refused" in cloud.stderr, cloud.stderr
        assert [s.authorization for s in net.proxied] == [f"Bearer {FAKE_TOKEN}"]
        # ... and a custom endpoint configured in a credentials block (account URL + identity).
        AzureBlobStorageCredentials(account_url=f"https://127.0.0.1:{net.tls_port}/acct12").save(
            "fake-private-endpoint", overwrite=True)
        custom = _sync_down(f"https://127.0.0.1:{net.tls_port}/acct12/models/run1", dict(env, PREFECT_API_URL=prefect_api),
                            tmp_path / "custom", "--credentials", "fake-private-endpoint")
        assert "access refused" in custom.stderr, custom.stderr
        assert [s.authorization for s in net.direct] == [f"Bearer {FAKE_TOKEN}"]
    ledger.record("storage-endpoints", trials=len(HOSTILE), leaked=len(leaked), crashed=len(refused) - sum(refused),
                  tokens_seen_by_the_controls=len(net.proxied) + len(net.direct))


CLEARTEXT_KEY = "c2VjcmV0LWFjY291bnQta2V5LW5vdC1yZWFsLWF0LWFsbA=="
CLEARTEXT = [  # (location, connection string): a credential that would travel unencrypted
    ("http://acct12.blob.core.windows.net/models/run1?sv=2024-01-01&sp=rl&sig=Y2xlYXJ0ZXh0LXNpZw%3D%3D", None),
    ("az://models/run1", f"DefaultEndpointsProtocol=http;AccountName=acct12;AccountKey={CLEARTEXT_KEY};"
                         "EndpointSuffix=core.windows.net"),
    ("https://acct12.blob.core.windows.net/models/run1",
     f"AccountName=acct12;AccountKey={CLEARTEXT_KEY};BlobEndpoint=http://acct12.blob.core.windows.net"),
    ("http://acct12.blob.core.windows.net/models/run1", None),  # an identity token: refused already
]


def test_storage_credentials_travel_only_over_https(tmp_path):
    """`http://ACCOUNT.blob.core.windows.net/...?SAS` sent the SAS in cleartext (through the fake's
    HTTP proxy here, as any hop on the way would see it), a connection string with http:// its
    account-key signatures. Now only Azurite on this machine is reached over plain http."""
    with FakeInternet(tmp_path) as net:
        env = net.env(dict(os.environ))
        refused = []
        for i, (location, connection_string) in enumerate(CLEARTEXT):
            run_env = dict(env, AZURE_STORAGE_CONNECTION_STRING=connection_string) if connection_string else env
            done = _sync_down(location, run_env, tmp_path / f"d{i}")
            assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
            refused.append("over plain http://" in done.stderr or "http:// endpoint needs a connection string"
                           in done.stderr)
        leaked = net.credentials_seen() + net.connects
        assert all(refused) and leaked == [], (refused, leaked)
    ledger.record("storage-cleartext", trials=len(CLEARTEXT), leaked=len(leaked), crashed=len(refused) - sum(refused),
                  requests_in_the_clear=len(net.plain))
