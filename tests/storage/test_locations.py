"""Location parsing: every accepted form, normalisation, SAS redaction, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.errors import ConfigError, StorageAuthError
from tasks.storage.credentials import BlobCredentials, bind_account, parse_connection_string, resolve_credentials
from tasks.storage.locations import parse_location

SAS = "sv=2022-11-02&ss=b&srt=co&sp=rl&se=2030-01-01T00:00:00Z&sig=SECRETSIGNATURE%3D"


@pytest.mark.parametrize(
    "text, account, container, prefix",
    [
        ("https://acct01.blob.core.windows.net/data/train/images/", "acct01", "data", "train/images"),
        ("https://acct01.blob.core.windows.net/data", "acct01", "data", ""),
        ("abfss://data@acct01.dfs.core.windows.net/a/b", "acct01", "data", "a/b"),
        ("abfs://data@acct01.dfs.core.windows.net/", "acct01", "data", ""),
        ("http://127.0.0.1:10000/devstoreaccount1/data/x%20y/z", "devstoreaccount1", "data", "x y/z"),
        ("http://localhost:4567/devstoreaccount1/data", "devstoreaccount1", "data", ""),
        ("az://data/some/prefix/", None, "data", "some/prefix"),
    ],
)
def test_blob_forms(text, account, container, prefix):
    loc = parse_location(text)
    assert (loc.kind, loc.account, loc.container, loc.prefix) == ("blob", account, container, prefix)


def test_abfss_reads_through_the_blob_endpoint():
    loc = parse_location("abfss://data@acct01.dfs.core.windows.net/p")
    assert loc.account_url == "https://acct01.blob.core.windows.net"


def test_sas_is_kept_but_never_shown():
    loc = parse_location(f"https://acct01.blob.core.windows.net/data/p?{SAS}")
    assert loc.sas == SAS
    for text in (str(loc), repr(loc), loc.display, loc.child("x").display):
        assert "SECRET" not in text
    assert str(loc) == "https://acct01.blob.core.windows.net/data/p?<SAS redacted>"
    creds = resolve_credentials(loc)
    assert creds.source == "the SAS token in the URL" and "SECRET" not in repr(creds)


def test_a_query_that_is_not_a_sas_is_refused_without_echoing_it():
    with pytest.raises(ConfigError) as caught:
        parse_location("https://acct01.blob.core.windows.net/data/p?token=SECRET")
    assert "SECRET" not in str(caught.value)


@pytest.mark.parametrize(
    "text, datastore, prefix, workspace",
    [
        ("azureml://datastores/workspaceblobstore/paths/kitti/train", "workspaceblobstore", "kitti/train", None),
        ("azureml://datastores/store1", "store1", "", None),
        (
            "azureml://subscriptions/0000-1111/resourcegroups/rg-ml/workspaces/ws1/datastores/store1/paths/a/b/",
            "store1", "a/b", "ws1",
        ),
        ("azureml://Subscriptions/s/ResourceGroups/rg/Workspaces/ws2/Datastores/d/Paths/x", "d", "x", "ws2"),
    ],
)
def test_azureml_forms(text, datastore, prefix, workspace):
    loc = parse_location(text)
    assert (loc.kind, loc.datastore, loc.prefix, loc.workspace) == ("azureml", datastore, prefix, workspace)


@pytest.mark.parametrize(
    "text, says",
    [
        ("", "empty"),
        ("s3://bucket/key", "scheme 's3'"),
        ("https://example.com/data", "ACCOUNT.blob"),
        ("https://acct01.blob.core.windows.net/", "no container"),
        ("https://acct01.blob.core.windows.net/Bad_Container/x", "container name"),
        ("az://data/../etc", "'..'"),
        ("az://data/a//b", "empty"),
        ("abfss://acct01.dfs.core.windows.net/x", "CONTAINER@ACCOUNT"),
        ("azureml:mydata:3", "data assets"),
        ("azureml://workspaces/ws/things", "datastores/NAME"),
        ("http://127.0.0.1:10000/devstoreaccount1", "ACCOUNT/CONTAINER"),
        ("az://data/x?sig=1", "no query"),
    ],
)
def test_bad_locations_name_the_accepted_forms(text, says):
    with pytest.raises(ConfigError) as caught:
        parse_location(text)
    assert says in caught.value.what
    assert "az://CONTAINER/PREFIX" in caught.value.fix and caught.value.cli_exit_status == 2


def test_local_paths_and_child():
    assert parse_location("./data").path == Path("data").absolute()
    assert parse_location("file:///srv/x%20y").path == Path("/srv/x y")
    loc = parse_location("az://data/base")
    assert loc.child("app", "run/1").prefix == "base/app/run/1"
    assert parse_location("az://data").child("a").prefix == "a"
    assert parse_location("/srv").child("a/b").path == Path("/srv/a/b")


def test_connection_strings_and_account_binding():
    azurite = "UseDevelopmentStorage=true"
    assert parse_connection_string(azurite) == ("devstoreaccount1", "http://127.0.0.1:10000/devstoreaccount1")
    cloud = "DefaultEndpointsProtocol=https;AccountName=acct01;AccountKey=a2V5;EndpointSuffix=core.windows.net"
    assert parse_connection_string(cloud) == ("acct01", "https://acct01.blob.core.windows.net")
    creds = BlobCredentials("test", connection_string=cloud)
    bound = bind_account(parse_location("az://data/p"), creds)
    assert (bound.account, bound.account_url) == ("acct01", "https://acct01.blob.core.windows.net")
    with pytest.raises(StorageAuthError, match="account 'other01'"):
        bind_account(parse_location("https://other01.blob.core.windows.net/data"), creds)
    with pytest.raises(ConfigError, match="neither AccountName"):
        parse_connection_string("garbage")


def test_az_without_any_credential_says_how_to_give_one(monkeypatch):
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)
    with pytest.raises(StorageAuthError, match="--credentials BLOCK"):
        resolve_credentials(parse_location("az://data/x"))
