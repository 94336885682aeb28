"""AzureML datastore resolution (offline map against Azurite; a fake MLClient, the one thing we may fake)
and the mapping of Azure errors to retryable / final storage errors."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from tasks.errors import (
    ConfigError,
    StorageAuthError,
    StorageError,
    StorageNotFoundError,
    TransientStorageError,
    is_transient,
)
from tasks.storage import StorageAccess, sync_down
from tasks.storage.azure_errors import Target, map_azure_error
from tasks.storage.azureml import resolve_datastore
from tasks.storage.locations import parse_location
from tests.storage.helpers import read_tree, upload_tree


class FakeDatastores:
    def __init__(self, stores):
        self.stores, self.calls = stores, []

    def get(self, name, include_secrets=False):
        self.calls.append((name, include_secrets))
        if name not in self.stores:
            raise KeyError(f"datastore {name} not found")
        return self.stores[name]


def fake_factory(stores, seen):
    def factory(sub, rg, ws):
        seen.append((sub, rg, ws))
        return SimpleNamespace(datastores=FakeDatastores(stores))

    return factory


def test_live_resolution_builds_the_blob_location_and_key_credentials():
    store = SimpleNamespace(
        account_name="acct01", container_name="train", endpoint="core.windows.net", protocol="https",
        credentials=SimpleNamespace(account_key="a2V5"),
    )
    seen = []
    loc = parse_location("azureml://subscriptions/s1/resourcegroups/rg1/workspaces/ws1/datastores/blobs/paths/kitti")
    blob, creds = resolve_datastore(loc, client_factory=fake_factory({"blobs": store}, seen))
    assert seen == [("s1", "rg1", "ws1")]
    assert (blob.kind, blob.account_url, blob.container, blob.prefix) == (
        "blob", "https://acct01.blob.core.windows.net", "train", "kitti")
    assert "AccountKey=a2V5" in creds.connection_string and "account key" in creds.source


def test_identity_based_and_adls_datastores():
    adls = SimpleNamespace(account_name="lake01", filesystem="fs", endpoint=None, protocol=None, credentials=None)
    blob, creds = resolve_datastore(parse_location("azureml://datastores/lake/paths/x"),
                                    client_factory=fake_factory({"lake": adls}, []))
    assert (blob.container, blob.account_url, creds) == ("fs", "https://lake01.blob.core.windows.net", None)


def test_unknown_or_unsupported_datastores_are_clear_errors():
    files = SimpleNamespace(account_name="acct01", file_share_name="share")
    factory = fake_factory({"share": files}, [])
    with pytest.raises(StorageNotFoundError, match="cannot resolve datastore 'nope'"):
        resolve_datastore(parse_location("azureml://datastores/nope"), client_factory=factory)
    with pytest.raises(ConfigError, match="not a blob or ADLS Gen2 datastore"):
        resolve_datastore(parse_location("azureml://datastores/share"), client_factory=factory)
    with pytest.raises(StorageNotFoundError, match="offline mapping"):
        resolve_datastore(parse_location("azureml://datastores/nope"), mapping={"other": ("https://a.blob.x", "c")})


@pytest.mark.services
def test_offline_mapping_syncs_from_azurite(azurite, blob_container, workdir, monkeypatch):
    upload_tree(blob_container, "kitti/train", {"images/1.png": b"png", "labels/1.txt": b"car"})
    mapping = {"workspaceblobstore": [azurite.connection_string, blob_container.container_name]}
    monkeypatch.setenv("TAOFLOW_AZUREML_DATASTORES", json.dumps(mapping))
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)
    report = sync_down("azureml://datastores/workspaceblobstore/paths/kitti/train", workdir / "d")
    assert read_tree(workdir / "d") == {"images/1.png": b"png", "labels/1.txt": b"car"}
    assert report.source.endswith(f"/{blob_container.container_name}/kitti/train")


@pytest.mark.services
def test_wrong_key_is_an_auth_error_naming_account_container_and_credential(azurite, blob_container, workdir):
    wrong = azurite.connection_string.replace("AccountKey=Eby8", "AccountKey=AAAA")
    with pytest.raises(StorageAuthError) as caught:
        sync_down(f"{azurite.blob_endpoint}/{blob_container.container_name}", workdir / "d",
                  access=StorageAccess(connection_string=wrong))
    err = caught.value
    assert not is_transient(err)
    assert f"container {blob_container.container_name}" in err.where and "devstoreaccount1" in err.where
    assert "the given connection string" in err.what


def _http_error(status, code=None):
    from azure.core.exceptions import HttpResponseError

    exc = HttpResponseError(message=f"status {status}")
    exc.status_code, exc.error_code = status, code
    return exc


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504, 412])
def test_retryable_statuses_are_transient(status):
    assert isinstance(map_azure_error(_http_error(status), Target("a", "c", "env"), "x"), TransientStorageError)


def test_connection_errors_are_transient_and_auth_and_not_found_are_final():
    from azure.core.exceptions import ServiceRequestError

    target = Target("acct", "cont", "Prefect block 'b'")
    assert is_transient(map_azure_error(ServiceRequestError("refused"), target, "listing"))
    auth = map_azure_error(_http_error(403, "AuthorizationFailure"), target, "listing")
    assert isinstance(auth, StorageAuthError) and "Prefect block 'b'" in auth.what and not is_transient(auth)
    missing = map_azure_error(_http_error(404, "ContainerNotFound"), target, "listing")
    assert isinstance(missing, StorageNotFoundError) and "container does not exist" in missing.what
    assert isinstance(map_azure_error(_http_error(400), target, "x"), StorageError)
