"""The artifact pictures in a real browser: a flow publishes the report to a real `prefect server`
(UI on), its results go to Azurite through a SAS URL, and headless Debian Chromium (driven by
Playwright's Python package, the system browser, nothing downloaded) opens the flow run's
Artifacts tab in both Prefect UIs, follows every artifact and checks that every image loaded.

Nothing leaves the machine: the server runs with deployments/offline.env, as docs/deploy.md starts
it; every request the pages make is recorded (and any to a host other than loopback aborted in the
browser), and the server's and Chromium's own outbound HTTP goes to a local recording proxy.

Set TAOFLOW_UPDATE_SCREENSHOT=1 to refresh docs/artifacts.png from this run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.parse
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tasks.job.demo import generate_demo_dataset
from tests.deployments.server import REPO, PrefectServer, running_server
from tests.fixtures.offline import LOOPBACK, EgressRecorder, is_local
from tests.fixtures.services import AZURITE_ACCOUNT, AZURITE_KEY, service_missing
from tests.standin.traces import traces_root

pytestmark = pytest.mark.services

CHROMIUM = Path("/usr/bin/chromium")
#: Pictures per artifact: the comparison chart, the curves, three dataset charts, the contact sheet.
PICTURES = {"report-comparison": 1, "report-training": 1, "report-dataset": 3, "report-samples": 1}
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu",
                 # Chromium's own traffic off (the recording proxy below hears whatever is left of it).
                 "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-default-apps", "--metrics-recording-only", "--disable-domain-reliability",
                 "--disable-client-side-phishing-detection", "--no-pings", "--disable-breakpad",
                 # Debian's Chromium 156 still asks accounts.google.com/ListAccounts and the component updater
                 # (update.googleapis.com, the on-device model manifest ceofaddefefcbblgcgnibnonglccbfja) with
                 # all the flags above: both are pointed at a closed loopback port, so they never leave.
                 "--gaia-url=http://127.0.0.1:9/", "--component-updater=url-source=http://127.0.0.1:9/"]
#: Prefect 3.9.1's React UI (/v2) initialises Amplitude on every load, whatever the settings (its
#: `initAmplitude` runs unconditionally; only the events check the server's `analytics_enabled`), and
#: Amplitude's SDK then fetches its remote configuration from here. No Prefect setting turns that off
#: (docs/deploy.md): the browser aborts it, and the test fails on any other request off this machine.
AMPLITUDE_CONFIG = "https://sr-client-cfg.amplitude.com/config/"
#: How docs/deploy.md starts the server; the test servers read the same file (tests/fixtures/offline.py).
DOCUMENTED_START = "set -a; . deployments/offline.env; set +a"
#: Every <img> with a source. The React UI's raw-markdown editor (CodeMirror) also puts source-less
#: `<img class="cm-widgetBuffer">` cursor spacers in the page: those are not pictures to load.
ALL_IMAGES = ("Array.from(document.images).filter(i => i.getAttribute('src') !== null)"
              ".map(i => ({src: i.src.slice(0, 40), ok: i.complete, w: i.naturalWidth}))")


@dataclass
class Browser:
    """Chromium with every request its pages made, in order: (the requesting document's URL, the URL)."""

    context: object
    requested: list[tuple[str, str]] = field(default_factory=list)

    def record(self, request) -> None:
        try:
            document = request.frame.url
        except Exception:  # noqa: BLE001 - a service worker's request has no frame
            document = "(service worker)"
        self.requested.append((document, request.url))


@pytest.fixture(scope="module")
def browser_egress():
    recorder = EgressRecorder()
    yield recorder
    recorder.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory, browser_egress):
    if not CHROMIUM.exists():
        service_missing(f"Debian's chromium is not installed at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        service_missing("Playwright's Python package is not installed")
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as playwright:
        # A persistent context is the only way to give Chromium a fresh --user-data-dir of our own.
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000},
            proxy={"server": browser_egress.url, "bypass": ",".join(f"[{h}]" if ":" in h else h for h in LOOPBACK)})
        seen = Browser(context)
        context.on("request", seen.record)
        context.route(lambda url: not is_local(url), lambda route: route.abort())
        yield seen
        context.close()


def sas_url(azurite, container: str) -> tuple[str, str]:
    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    sas = generate_container_sas(AZURITE_ACCOUNT, container, account_key=AZURITE_KEY,
                                 permission=ContainerSasPermissions(read=True, write=True, list=True, create=True,
                                                                    add=True, delete=True),
                                 expiry=datetime.now(timezone.utc) + timedelta(hours=1))
    return f"{azurite.blob_endpoint}/{container}/parking/run-1?{sas}", urllib.parse.parse_qs(sas)["sig"][0]


def run_report_flow(server: PrefectServer, workdir: Path, results: str, connection_string: str) -> str:
    data = generate_demo_dataset(workdir / "data", count=24).root
    status = traces_root() / "train" / "one-based" / "complete" / "status.json"
    # The sync signs with the SAS in the URL (a SAS wins over other credentials); the connection string
    # is there because it is what makes Azurite's http://127.0.0.1 endpoint a configured, trusted one.
    env = server.env(TAOFLOW_REPORT_RESULTS=results, AZURE_STORAGE_CONNECTION_STRING=connection_string)
    done = subprocess.run([sys.executable, "-m", "tests.report.report_flow", str(data), str(status), str(workdir)],
                          env=env, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])["flow_run_id"]


def artifact_links(page, url: str) -> list[str]:
    page.goto(url)
    # Clicked as a person would: the Vue UI opens a run on its Logs tab whatever the query says.
    page.get_by_text("Artifacts", exact=True).first.click(timeout=60_000)
    page.wait_for_function("document.querySelectorAll(\"a[href*='/artifacts/artifact/']\").length >= 4",
                           timeout=60_000)
    return page.evaluate("Array.from(new Set(Array.from(document.querySelectorAll(\"a[href*='/artifacts/artifact/']\"))"
                         ".map(a => a.getAttribute('href'))))")


def open_artifact(page, url: str, pictures: int) -> list[dict]:
    """Every image of an artifact's page, once its pictures are there and nothing is still loading."""
    page.goto(url)
    # Read in the same tick as the condition: the UI re-renders while it settles on its route.
    found = page.wait_for_function(
        f"() => {{ const all = {ALL_IMAGES}; const shown = all.filter(i => i.src.startsWith('data:image/'));"
        f" return shown.length >= {pictures} && Array.from(document.images).every(i => i.complete) ? all : null; }}",
        timeout=60_000)
    return found.json_value()


def test_every_artifact_picture_loads_in_both_prefect_uis_and_nothing_leaves(browser, browser_egress, azurite,
                                                                             blob_service, tmp_path):
    container = blob_service.create_container("report-ui").container_name
    results, signature = sas_url(azurite, container)
    (tmp_path / "prefect").mkdir()
    server_egress = EgressRecorder()
    with running_server(tmp_path / "prefect", ui=True, egress=server_egress) as server:
        run_id = run_report_flow(server, tmp_path, results, azurite.connection_string)
        base = f"http://127.0.0.1:{server.port}"
        page = browser.context.new_page()
        page.goto(f"{base}/")
        assert "/v2" not in page.url, f"the UI people land on should be the Vue UI, not {page.url}"
        seen: dict[str, dict[str, list[dict]]] = {}
        for ui, prefix in (("react", "/v2"), ("vue (default)", "")):
            links = artifact_links(page, f"{base}{prefix}/runs/flow-run/{run_id}?tab=Artifacts")
            assert len(links) == len(PICTURES), links
            seen[ui] = {}
            for link in links:
                artifact = server.get(f"/artifacts/{link.rsplit('/', 1)[1]}")
                images = open_artifact(page, f"{base}{link}", PICTURES[artifact["key"]])
                seen[ui][artifact["key"]] = images
                pictures = [i for i in images if i["src"].startswith("data:image/")]
                assert len(pictures) == PICTURES[artifact["key"]], (ui, artifact["key"], images)
                broken = [i for i in images if not i["ok"] or i["w"] <= 0]
                assert not broken, f"{ui}: images that did not load on {artifact['key']}: {broken}"
                assert signature not in page.content() and signature not in json.dumps(artifact)
                assert results.split("?")[0] not in artifact["data"], "no storage URL in an artifact"
                if ui.startswith("react") and artifact["key"] == "report-dataset":
                    screenshot(page, tmp_path)
        assert set(seen["react"]) == set(seen["vue (default)"]) == set(PICTURES)
        # The report went to Azurite with the model, and says where without the SAS.
        blobs = {b.name for b in blob_service.get_container_client(container).list_blobs()}
        assert {"parking/run-1/report.html", "parking/run-1/report.json", "parking/run-1/status.json"} <= blobs
        page.close()
        unasked = list(server_egress.attempts)
        # Asked: a view of Prefect's collection registry is fetched from GitHub (Prefect answers from its own
        # copy when it cannot): the recorder hears the server when it does try to reach outside.
        assert server.get("/collections/views/aggregate-worker-metadata")
        asked = server_egress.attempts[len(unasked):]
        log = (server.home / "server.log").read_text()
    server_egress.close()
    blob_service.delete_container(container)
    assert unasked == [], f"the server, the report flow or the CLI tried to reach outside: {unasked}"
    assert asked == ["raw.githubusercontent.com:443"], asked
    assert "telemetry" not in log.lower(), log[-2000:]
    # By the document that asked: a React page's timers may still fire after the next page was asked for.
    react = f"{base}/v2/"
    outside = [(document, url) for document, url in browser.requested if not is_local(url)]
    assert [url for document, url in outside if not document.startswith(react)] == [], outside
    assert outside and all(url.startswith(AMPLITUDE_CONFIG) for _, url in outside), outside
    assert any(document.startswith(f"{base}/runs/") for document, _ in browser.requested), "no Vue page recorded"
    assert browser_egress.attempts == [], f"Chromium's own traffic went out: {browser_egress.attempts}"
    assert DOCUMENTED_START in (REPO / "docs" / "deploy.md").read_text()


def screenshot(page, tmp_path: Path) -> None:
    shot = tmp_path / "artifacts.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if os.environ.get("TAOFLOW_UPDATE_SCREENSHOT") == "1":
        (REPO / "docs" / "artifacts.png").write_bytes(shot.read_bytes())
