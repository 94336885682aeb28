"""The listing without the Azure SDK (tasks.storage.quick_list), on real Azurite.

It must list exactly what the SDK path lists (awkward names, several pages, SAS or Shared Key),
sign exactly as the SDK signs, answer None (so the SDK path takes over) for anything but a clean
page, stay out of the way where it does not apply, and spare a fresh `taoflow sync down` with
nothing to do the SDK's import.
"""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
from urllib.parse import quote

import pytest

from tasks.storage import blobio
from tasks.storage.credentials import BlobCredentials
from tasks.storage.quick_list import API_VERSION, QuickLister
from tests.fixtures.services import AZURITE_KEY, free_port
from tests.storage.helpers import location_of, read_tree, upload_tree

pytestmark = pytest.mark.services
ACCOUNT = "devstoreaccount1"
AWKWARD = {
    "caf\u00e9/na\u00efve file.txt": b"1", "a+b.txt": b"2", "100%.txt": b"3", "x=y&z;w.txt": b"4",
    "#hash/q?.txt": b"5", "deep/a/b/c.bin": b"6" * 1000, "empty": b"",
}


def sdk_listing(container, prefix: str) -> list:
    return list(blobio.list_pages(container, prefix))


def test_it_lists_what_the_sdk_lists_over_several_pages(azurite, blob_container, monkeypatch):
    upload_tree(blob_container, "d +%\u00e9&=#", AWKWARD)
    upload_tree(blob_container, "other", {"x": b"not under the prefix"})
    monkeypatch.setattr(blobio, "LIST_PAGE", 3)
    lister = QuickLister(azurite.blob_endpoint, blob_container.container_name, account=ACCOUNT, key=AZURITE_KEY)

    found = lister.list("d +%\u00e9&=#")

    assert found is not None and len(found) == len(AWKWARD)
    assert found == sdk_listing(blob_container, "d +%\u00e9&=#"), "'+', '&', '=', '#' in a prefix, both paths"
    assert lister.list("") == sdk_listing(blob_container, "")


def test_a_sas_lists_the_same(azurite, blob_container):
    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    upload_tree(blob_container, "d", AWKWARD)
    sas = generate_container_sas(ACCOUNT, blob_container.container_name, account_key=AZURITE_KEY,
                                 permission=ContainerSasPermissions(read=True, list=True),
                                 expiry=datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1))
    assert QuickLister(azurite.blob_endpoint, blob_container.container_name, sas=sas).list("d") == \
        sdk_listing(blob_container, "d")
    reader = generate_container_sas(ACCOUNT, blob_container.container_name, account_key=AZURITE_KEY,
                                    permission=ContainerSasPermissions(read=True),
                                    expiry=datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1))
    assert QuickLister(azurite.blob_endpoint, blob_container.container_name, sas=reader).list("d") is None


def test_it_signs_as_the_sdk_signs():
    """Same request, same x-ms-date: the Authorization header of the SDK's Shared Key policy."""
    from azure.core.pipeline import PipelineContext, PipelineRequest
    from azure.core.rest import HttpRequest
    from azure.storage.blob import ContainerClient
    from azure.storage.blob._shared.authentication import SharedKeyCredentialPolicy

    endpoint, container = "http://127.0.0.1:10000/devstoreaccount1", "data-1"
    params = blobio.list_params("caf\u00e9 +%/x", "2!84!MDAwMDE2IWYvY2Fmw6k-")
    date = "Mon, 07 Dec 2026 10:00:00 GMT"
    request = HttpRequest("GET", f"{endpoint}/{container}", params={k: quote(v, safe="") for k, v in params.items()},
                          headers={"x-ms-date": date, "x-ms-version": API_VERSION, "Accept": "application/xml"})
    pipeline_request = PipelineRequest(request, PipelineContext(None))
    SharedKeyCredentialPolicy(ACCOUNT, AZURITE_KEY).on_request(pipeline_request)

    lister = QuickLister(endpoint, container, account=ACCOUNT, key=AZURITE_KEY)
    assert request.headers["Authorization"] == lister.authorization(params, date)
    assert ContainerClient(endpoint, container).api_version == API_VERSION, "the SDK's REST version moved"


def test_anything_but_a_clean_page_is_none(azurite, blob_container):
    upload_tree(blob_container, "d", {"a": b"1"})
    name = blob_container.container_name
    assert QuickLister(azurite.blob_endpoint, name, account=ACCOUNT, key="d3Jvbmcga2V5").list("d") is None
    assert QuickLister(azurite.blob_endpoint, "no-such-container", account=ACCOUNT, key=AZURITE_KEY).list("") is None
    closed = f"http://127.0.0.1:{free_port()}/{ACCOUNT}"
    assert QuickLister(closed, name, account=ACCOUNT, key=AZURITE_KEY).list("d") is None


def test_it_stays_out_where_it_does_not_apply(azurite, monkeypatch):
    conn = BlobCredentials("test", connection_string=azurite.connection_string)
    identity = BlobCredentials("identity", account_url="https://acct.blob.core.windows.net", credential=object())
    sas = BlobCredentials("sas", account_url=azurite.blob_endpoint, credential="sv=1&sig=x")
    endpoint = azurite.blob_endpoint
    assert QuickLister.for_credentials(endpoint, "c", conn) is None, "the SDK is loaded in this process"
    monkeypatch.delitem(sys.modules, "azure.storage.blob")  # as in a fresh CLI process
    assert QuickLister.for_credentials(endpoint, "c", conn).key == AZURITE_KEY
    assert QuickLister.for_credentials(endpoint, "c", sas).sas == "sv=1&sig=x"
    assert QuickLister.for_credentials(identity.account_url, "c", identity) is None, "tokens need the SDK"
    monkeypatch.setenv("http_proxy", "http://proxy.example:3128")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    assert QuickLister.for_credentials(endpoint, "c", conn) is None, "a proxy: only the SDK's transport"
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    assert QuickLister.for_credentials(endpoint, "c", conn) is not None


CLI = """
import sys
from taoflow.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print("sdk" if "azure.storage.blob" in sys.modules else "no sdk", file=sys.stderr)
sys.exit(code)
"""


def cli_sync(azurite, location: str, dest) -> tuple[dict, str]:
    run = subprocess.run([sys.executable, "-c", CLI, "sync", "down", location, str(dest), "--json"],
                         capture_output=True, text=True, timeout=120,
                         env={"AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string, "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout), run.stderr.strip().splitlines()[-1]


def test_a_fresh_cli_resync_with_nothing_to_do_never_imports_the_sdk(azurite, blob_container, workdir):
    tree = {"a.txt": b"1", "sub/b.bin": b"2" * 5000}
    upload_tree(blob_container, "d", tree)
    location = location_of(azurite, blob_container, "d")

    first, loaded = cli_sync(azurite, location, workdir / "t")
    assert (first["files_transferred"], loaded) == (2, "sdk")
    again, loaded = cli_sync(azurite, location, workdir / "t")
    assert (again["files_transferred"], loaded) == (0, "no sdk")
    blob_container.upload_blob("d/a.txt", b"changed", overwrite=True)
    changed, loaded = cli_sync(azurite, location, workdir / "t")
    assert (changed["files_transferred"], loaded) == (1, "sdk"), "a change opens the SDK client when needed"
    assert read_tree(workdir / "t") == {**tree, "a.txt": b"changed"}


def test_a_prefix_with_plus_ampersand_and_equals_syncs_through_the_sdk_path(azurite, blob_container, workdir):
    """Before the SDK path quoted its query, such a prefix failed the signature (and '#' cut it short)."""
    from tasks.storage import sync_down
    from tests.storage.helpers import access_for

    upload_tree(blob_container, "run+1&x=y", {"a.txt": b"1", "b/c.txt": b"2"})
    upload_tree(blob_container, "run", {"other.txt": b"not under the prefix"})
    sync_down(location_of(azurite, blob_container, "run+1&x=y"), workdir / "t", access=access_for(azurite))
    assert read_tree(workdir / "t") == {"a.txt": b"1", "b/c.txt": b"2"}
