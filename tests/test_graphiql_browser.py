"""GraphiQL in a real browser: Debian's Chromium, driven by Playwright, against the API served by
uvicorn. The page loads from this machine's assets only, takes a bearer token in its headers
editor as a person would paste it, runs its first query and shows the answer."""

from pathlib import Path

import pytest
import requests

from graphql_odata.graphql.graphiql import assets_installed
from tests.conftest import SCREENSHOTS, PublishedGold, live_api, register_test_client

pytestmark = pytest.mark.browser


def test_graphiql_loads_from_local_assets_and_runs_a_query(browser, published_gold: PublishedGold) -> None:
    if not assets_installed():
        pytest.fail("GraphiQL's files are not installed: make graphiql-assets")
    with live_api(published_gold.settings) as base:
        client_id, secret = register_test_client(published_gold.settings)
        grant = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
        token = requests.post(f"{base}/oauth/token", data=grant, timeout=10).json()["access_token"]
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        headers = '{"Authorization": "Bearer ' + token + '"}'
        page.add_init_script(f"window.localStorage.setItem('graphiql:headers', {headers!r});")
        page.goto(f"{base}/graphql")
        page.wait_for_selector(".graphiql-container", timeout=30_000)
        page.click(".graphiql-execute-button")
        result = page.locator(".result-window")
        result.get_by_text('"totalCount": 260').wait_for(timeout=30_000)
        assert '"ListingKey": "QOBRIX_' in result.inner_text()
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shot = SCREENSHOTS / "graphiql.png"
        page.screenshot(path=str(shot))
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert requested and all(url.startswith(base) for url in requested), "every request stays on this machine"
        page.close()


def test_graphiql_page_says_how_to_install_missing_assets(published_gold: PublishedGold, monkeypatch) -> None:
    monkeypatch.setattr("graphql_odata.graphql.graphiql.ASSETS", Path("/nonexistent"))
    with live_api(published_gold.settings) as base:
        response = requests.get(f"{base}/graphql", headers={"Accept": "text/html"}, timeout=10)
    assert response.status_code == 503 and "make graphiql-assets" in response.text
