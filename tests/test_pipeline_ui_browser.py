"""The pipeline UI in a real browser (Debian's Chromium, driven by Playwright) against `mls2 serve`'s
application on uvicorn, fed by the sandbox: sign in, see the graph, sync and update and watch the
flows complete live, advance the sandbox and sync again, open the update, set a 1-minute schedule
and see an update start on its own, sign out; an update sent by `mls2 pipeline run` from a shell
is listed, and a full refresh selection runs only its dataset. A screenshot of each page goes to
.cache/screenshots (CI keeps that folder)."""

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from conf.cli import serving_app
from conf.settings import Settings, load_settings
from ingestion.sandbox import SANDBOX_API_KEY, SANDBOX_API_USER, SandboxServer, SandboxWorld
from ingestion.sandbox.faults import FaultConfig
from pipelines.graph import load_graph
from pipelines.ui.announcement import announced
from pipelines.ui.operators import OperatorRegistry
from pipelines.ui.views import HERE
from tests.conftest import SCREENSHOTS, served

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxWorld(seed=5, properties=30), faults=FaultConfig(defect_rate=0.15)) as server:
        yield server


@pytest.fixture(scope="module")
def site(sandbox: SandboxServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Settings]]:
    if not all((HERE / "static" / "vendor" / name).exists() for name in ("mermaid.min.js", "chart.umd.min.js")):
        pytest.fail("the pipeline UI's assets are not installed: make ui-assets")
    settings = load_settings(
        mls2_data_dir=tmp_path_factory.mktemp("ui") / "data",
        qobrix_api_base_url=sandbox.base_url,
        qobrix_api_user=SANDBOX_API_USER,
        qobrix_api_key=SANDBOX_API_KEY,
    )
    OperatorRegistry(settings.paths.operators).add("ops", PASSWORD)
    with served(serving_app(settings)) as base, announced(settings.paths, base):
        yield base, settings


def shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"ui-{name}.png"), full_page=True)


def run_and_watch(page, action_label: str, skipped: tuple[str, ...] = ()) -> str:
    """Click an action and wait for its flows to complete live, those of `skipped` skipped; the
    update's id."""
    page.get_by_role("button", name=action_label, exact=True).click()
    page.locator("#live-flows li").first.wait_for(timeout=60_000)
    page.wait_for_function("document.getElementById('live').dataset.finished", timeout=240_000)
    assert page.locator("#live-state").inner_text() == "COMPLETED", page.locator("#message").inner_text()
    states = dict(
        page.locator("#live-flows li").evaluate_all("items => items.map(i => [i.dataset.dataset, i.dataset.state])")
    )
    assert states and {name: state for name, state in states.items() if state != "COMPLETED"} == dict.fromkeys(
        skipped, "SKIPPED"
    ), states
    return page.locator("#live-link").get_attribute("href").rsplit("/", 1)[1]


def sign_in(page, base: str) -> None:
    page.goto(f"{base}/ui/login")
    page.get_by_label("Operator").fill("ops")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/ui/")


def test_an_operator_signs_in_runs_updates_live_and_signs_out(browser, site, sandbox: SandboxServer) -> None:
    base, _ = site
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))

    page.goto(f"{base}/ui/")
    assert page.url.endswith("/ui/login"), "the UI opened without signing in"
    page.get_by_label("Operator").fill("ops")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("alert").filter(has_text="wrong password").wait_for()
    page.get_by_label("Operator").fill("ops")
    page.get_by_label("Password").fill(PASSWORD)
    shot(page, "login")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/ui/")

    page.locator("#graph svg").wait_for(timeout=60_000)
    graph = load_graph()
    landing_folders = {dataset.landing.entity for dataset in graph.ordered() if dataset.landing}
    expected_nodes = len(graph.datasets) + len(landing_folders) + 1  # and the served snapshot
    assert page.locator("#graph svg .node").count() == expected_nodes, "a dataset is missing from the graph"
    shot(page, "overview-empty")

    first = run_and_watch(page, "Sync and update")
    shot(page, "first-update-live")
    landed_first = sandbox.world.property_count
    assert landed_first > 0

    advanced = requests.post(f"{sandbox.url}/_sandbox/advance?steps=3", timeout=30)
    assert advanced.status_code == 200, advanced.text
    page.reload()
    # RESO's standard lookup values are computed again only when their definition changes.
    second = run_and_watch(page, "Sync and update", skipped=("reso_gold.standard_lookups",))
    assert second != first

    page.goto(f"{base}/ui/updates/{second}")
    facts = page.locator("dl.facts").inner_text()
    landed = int(re.search(r"records landed: (\d+)", facts).group(1))
    assert landed > 0, facts
    flows = [dataset for dataset in load_graph().ordered() if dataset.kind != "temporary_view"]
    assert page.locator("#flows tbody tr").count() == len(flows), "a flow of the update is missing"
    gold_row = page.locator("#flows tbody tr", has_text="reso_gold.property").first
    assert "COMPLETED" in gold_row.inner_text()
    shot(page, "update")

    page.goto(f"{base}/ui/")
    page.locator('#graph svg .node[data-dataset="qobrix_silver.property"]').click()
    page.wait_for_url(f"{base}/ui/datasets/qobrix_silver.property")
    page.wait_for_selector("#expectation-chart[data-rendered]", timeout=30_000)
    assert int(page.locator("#expectation-chart").get_attribute("data-rendered")) >= 5
    shot(page, "dataset")

    page.get_by_role("link", name="Data quality").click()
    page.locator("#integrity tbody tr").first.wait_for()
    assert page.locator("#integrity .state.completed").count() > 0
    shot(page, "quality")
    listing_rows = page.get_by_role("link", name="qobrix_silver.property", exact=True)
    held = page.locator("#quarantine-counts tbody tr").filter(has=listing_rows).first
    rule = held.locator("td").nth(1).inner_text()
    held.locator("td").nth(2).get_by_role("link").click()
    page.locator("#quarantined tbody tr").first.wait_for()
    first_row = page.locator("#quarantined tbody tr").first
    assert rule in first_row.locator(".rules").inner_text()
    assert re.fullmatch(r"\d+", first_row.locator("td").nth(5).inner_text()), "the row does not name its page"
    shot(page, "quarantine")

    page.goto(f"{base}/ui/")
    assert page.locator("#updates tbody tr").count() == 2
    page.locator("#schedule-mode").select_option("every")
    page.locator("#schedule-minutes").fill("1")
    page.get_by_role("button", name="Set").click()
    page.locator("#schedule", has_text="every 1 minutes").wait_for()
    # A minute after the last update started, the schedule starts one; the page picks it up live.
    page.wait_for_function("document.getElementById('live').dataset.trigger === 'schedule'", timeout=120_000)
    page.wait_for_function("document.getElementById('live').dataset.finished", timeout=240_000)
    assert page.locator("#live-state").inner_text() == "COMPLETED"
    shot(page, "scheduled-update")
    page.locator("#schedule-mode").select_option("off")
    page.get_by_role("button", name="Set").click()
    page.locator("#schedule", has_text="off").wait_for()
    page.reload()
    rows = page.locator("#updates tbody tr")
    assert rows.count() == 3 and rows.first.locator("td").nth(2).inner_text() == "schedule"
    assert rows.first.locator(".state").inner_text() == "COMPLETED"
    page.set_viewport_size({"width": 390, "height": 844})
    shot(page, "overview-phone")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390 + 1, "the page scrolls sideways on a phone"
    page.set_viewport_size({"width": 1280, "height": 900})

    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(f"{base}/ui/login")
    page.goto(f"{base}/ui/")
    assert page.url.endswith("/ui/login"), "the session outlived signing out"
    assert requested and all(url.startswith(base) for url in requested), "every request stays on this machine"
    page.close()


def test_a_shells_update_is_listed_and_a_full_refresh_selection_runs_only_its_datasets(browser, site) -> None:
    """`mls2 pipeline run` from a shell runs in the server (listed with the trigger `api`), and the
    overview's *Full refresh selection* recomputes the datasets picked, and no other."""
    base, settings = site
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    sign_in(page, base)
    # On its own of the test before: no schedule, and gold built.
    page.locator("#schedule-mode").select_option("off")
    page.get_by_role("button", name="Set").click()
    page.locator("#schedule", has_text="off").wait_for()
    if not settings.paths.snapshot_pointer.exists():
        run_and_watch(page, "Sync and update")
        page.reload()
    before = page.locator("#updates tbody tr").count()
    environment = {**os.environ, "MLS2_DATA_DIR": str(settings.paths.root)}
    mls2 = str(Path(sys.executable).with_name("mls2"))
    shell = subprocess.run([mls2, "pipeline", "run"], env=environment, capture_output=True, text=True, timeout=300)
    assert shell.returncode == 0 and "runs on the server" in shell.stderr, shell.stderr
    page.reload()
    rows = page.locator("#updates tbody tr")
    assert rows.count() == before + 1 and rows.first.locator("td").nth(2).inner_text() == "api"

    page.locator("summary", has_text="Refresh selection").click()
    page.locator("#selection").select_option(["reso_gold.office"])
    page.get_by_role("button", name="Full refresh selection", exact=True).click()
    page.locator("#live-flows li").first.wait_for(timeout=60_000)
    page.wait_for_function("document.getElementById('live').dataset.finished", timeout=240_000)
    assert page.locator("#live-state").inner_text() == "COMPLETED"
    states = dict(
        page.locator("#live-flows li").evaluate_all("items => items.map(i => [i.dataset.dataset, i.dataset.state])")
    )
    assert {name for name, state in states.items() if state == "COMPLETED"} == {"reso_gold.office"}, states
    shot(page, "full-refresh-selection")
    page.close()
