"""Which hosts a location may send credentials to: Azure's storage endpoints, or exactly the
configured one (Azurite, private endpoints); anything else stops before a credential exists.
Where a token really travels is shown end to end in tests/reliability/test_storage_hostile.py."""

from __future__ import annotations

import pytest

from tasks.errors import ConfigError, UntrustedEndpointError
from tasks.storage import StorageAccess, open_store, sync_down
from tasks.storage.endpoints import is_cloud_endpoint
from tests.storage.helpers import location_of, upload_tree

HOSTILE = [
    "https://acct12.blob.evil.example/models/run1",
    "https://acct12.blob.core.windows.net.evil.example/models/run1",
    "https://acct12.blob.core.windows.net:8443/models/run1",
    "abfss://models@acct12.dfs.evil.example/run1",
    "https://127.0.0.1:9443/acct12/models/run1",
    "https://localhost:9443/acct12/models/run1",
    "http://10.0.0.7:10000/devstoreaccount1/models/run1",
]
CLOUDS = [
    "https://acct12.blob.core.windows.net/models/run1",
    "abfss://models@acct12.dfs.core.windows.net/run1",
    "https://acct12.blob.core.usgovcloudapi.net/models/run1",
    "https://acct12.blob.core.chinacloudapi.cn/models/run1",
]


@pytest.fixture
def no_storage_env(monkeypatch):
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)


@pytest.mark.parametrize("location", HOSTILE)
def test_a_foreign_host_is_refused_before_any_credential(no_storage_env, location):
    with pytest.raises(UntrustedEndpointError) as caught:
        open_store(location)
    text = caught.value.render()
    assert "refusing to send storage credentials" in text and "configured: none" in text
    assert "AZURE_STORAGE_CONNECTION_STRING" in caught.value.fix


@pytest.mark.parametrize("location", CLOUDS)
def test_the_storage_endpoints_of_the_three_clouds_are_accepted(no_storage_env, location):
    store = open_store(location)  # builds the client; nothing is sent until a request is made
    assert is_cloud_endpoint(store.location.account_url)


def test_a_sas_does_not_make_a_foreign_host_acceptable(no_storage_env):
    with pytest.raises(UntrustedEndpointError):
        open_store("https://acct12.blob.evil.example/models/run1?sv=2024-01-01&sp=rl&sig=c2lnbmF0dXJl")


@pytest.mark.services
def test_azurite_works_exactly_at_the_configured_endpoint(azurite, blob_container, workdir, monkeypatch):
    upload_tree(blob_container, "d", {"a.txt": b"a"})
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)
    sync_down(location_of(azurite, blob_container, "d"), workdir / "ok")
    assert (workdir / "ok" / "a.txt").read_bytes() == b"a"
    elsewhere = location_of(azurite, blob_container, "d").replace(f":{azurite.port}/", f":{azurite.port + 1}/")
    with pytest.raises(UntrustedEndpointError, match=f"configured: http://127.0.0.1:{azurite.port}/devstoreaccount1"):
        sync_down(elsewhere, workdir / "no")
    assert not (workdir / "no").exists(), "something was written before the refusal"


@pytest.mark.services
def test_a_credentials_block_configures_its_endpoint(prefect_api, azurite, blob_container, workdir, no_storage_env):
    from prefect_azure import AzureBlobStorageCredentials

    AzureBlobStorageCredentials(connection_string=azurite.connection_string).save("azurite-endpoint", overwrite=True)
    upload_tree(blob_container, "d", {"a.txt": b"a"})
    access = StorageAccess(credentials="azurite-endpoint")
    sync_down(location_of(azurite, blob_container, "d"), workdir / "ok", access=access)
    assert (workdir / "ok" / "a.txt").read_bytes() == b"a"
    with pytest.raises(UntrustedEndpointError, match="block 'azurite-endpoint'"):
        sync_down("https://127.0.0.1:9/devstoreaccount1/models/d", workdir / "no", access=access)


@pytest.mark.services
def test_a_missing_credentials_block_is_one_config_error_naming_it_and_how_to_create_it(prefect_api, workdir):
    with pytest.raises(ConfigError) as caught:
        sync_down("az://models/run1", workdir / "x", access=StorageAccess(credentials="no-such-block"))
    error = caught.value
    assert "'no-such-block'" in error.what and error.where == "storage_credentials"
    assert "AzureBlobStorageCredentials" in error.fix and ".save('no-such-block')" in error.fix
    assert error.__cause__ is None and error.__suppress_context__, "Prefect's ValueError would print a second traceback"


CLEARTEXT_KEY = "c2VjcmV0LWFjY291bnQta2V5LW5vdC1yZWFsLWF0LWFsbA=="


@pytest.mark.parametrize("location,connection_string", [
    ("http://acct12.blob.core.windows.net/models/run1?sv=2024-01-01&sp=rl&sig=c2lnbmF0dXJl", None),
    ("az://models/run1", f"DefaultEndpointsProtocol=http;AccountName=acct12;AccountKey={CLEARTEXT_KEY}"),
    ("abfss://models@acct12.dfs.core.windows.net/run1",
     f"AccountName=acct12;AccountKey={CLEARTEXT_KEY};BlobEndpoint=http://acct12.blob.core.windows.net"),
])
def test_a_credential_never_goes_over_plain_http_to_another_machine(no_storage_env, location, connection_string):
    with pytest.raises(UntrustedEndpointError, match=r"over plain http:// to acct12\.blob\.core\.windows\.net"):
        open_store(location, StorageAccess(connection_string=connection_string))


@pytest.mark.services
def test_the_watch_polls_over_https_or_azurite_on_this_machine(azurite, no_storage_env):
    from prefect_azure import AzureBlobStorageCredentials

    from tasks.events.polling import service_client_from_block, service_client_from_env

    with pytest.raises(UntrustedEndpointError, match="over plain http://"):
        service_client_from_env(f"DefaultEndpointsProtocol=http;AccountName=acct12;AccountKey={CLEARTEXT_KEY};"
                                "EndpointSuffix=core.windows.net")
    with pytest.raises(UntrustedEndpointError, match="over plain http://"):
        service_client_from_block(AzureBlobStorageCredentials(account_url="http://acct12.blob.core.windows.net"))
    assert service_client_from_env(azurite.connection_string).get_service_properties() is not None
