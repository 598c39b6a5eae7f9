"""The pipeline UI's HTTP side, through the application `mls2 serve` serves: operators and their
sessions, CSRF on every action, updates started one at a time, followed live and canceled."""

import html
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from conf.cli import app as mls2
from conf.cli import serving_app
from conf.settings import Settings, load_settings
from expectations.integrity import run_integrity
from ingestion.sandbox import SandboxServer, SandboxWorld
from ingestion.sandbox.faults import FaultConfig
from pipelines import PipelineBusy, run_update
from pipelines._engine.maintenance import vacuum_due
from pipelines.ui.history import update_flows
from pipelines.ui.operators import OperatorError, OperatorRegistry
from pipelines.ui.runs import RunBusy, RunLog, RunManager, RunRequest
from pipelines.ui.schedule import Schedule, ScheduleError, Scheduler
from pipelines.ui.sessions import SessionStore
from tests.conftest import OPERATOR_PASSWORD as PASSWORD
from tests.conftest import make_sync, register_test_client


@pytest.fixture
def browser(landed: Settings) -> Iterator[TestClient]:
    """A client of the served application, not signed in."""
    with TestClient(serving_app(landed), base_url="http://testserver") as client:
        yield client
        client.app.state.pipeline_ui.runs.wait(120)


def sign_in(client: TestClient, name: str = "ops", password: str = PASSWORD) -> str:
    """Sign in through the login form; the page's CSRF token."""
    form = client.get("/ui/login")
    token = re.search(r'name="login_token" value="([^"]+)"', form.text).group(1)
    signed = client.post("/ui/login", data={"name": name, "password": password, "login_token": token})
    assert signed.status_code == 200 and signed.url.path == "/ui/", signed.text[:300]
    return re.search(r'name="csrf-token" content="([^"]+)"', signed.text).group(1)


def start(client: TestClient, csrf: str, action: str = "update", **body: object):
    return client.post("/ui/api/updates", json={"action": action, **body}, headers={"X-CSRF-Token": csrf})


def finished(client: TestClient, update_id: str) -> tuple[list[dict], dict]:
    """Follow an update's server-sent events to the end: its flow events and the end event."""
    flows, end = [], None
    with client.stream("GET", f"/ui/api/updates/{update_id}/events") as stream:
        event = None
        for line in stream.iter_lines():
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: "):
                data = json.loads(line.removeprefix("data: "))
                if event == "flow":
                    flows.append(data)
                else:
                    end = data
    return flows, end


def test_pages_and_actions_need_an_operator_session(browser: TestClient, landed: Settings) -> None:
    page = browser.get("/ui/", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/ui/login"
    assert browser.post("/ui/api/updates", json={"action": "update"}).status_code == 401
    client_id, secret = register_test_client(landed)
    grant = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    token = browser.post("/oauth/token", data=grant).json()["access_token"]
    as_api_client = browser.post(
        "/ui/api/updates", json={"action": "update"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert as_api_client.status_code == 401, "an API client started an update"


def test_a_wrong_password_or_a_forged_login_form_is_refused(browser: TestClient) -> None:
    form = browser.get("/ui/login")
    token = re.search(r'name="login_token" value="([^"]+)"', form.text).group(1)
    wrong = browser.post("/ui/login", data={"name": "ops", "password": "not the password", "login_token": token})
    assert wrong.status_code == 401 and "wrong password" in wrong.text
    assert "mls2_ui_session" not in browser.cookies
    browser.cookies.clear()
    forged = browser.post("/ui/login", data={"name": "ops", "password": PASSWORD, "login_token": token})
    assert forged.status_code == 401 and "expired" in forged.text


def test_the_session_cookie_is_http_only_and_same_site_strict(browser: TestClient) -> None:
    form = browser.get("/ui/login")
    token = re.search(r'name="login_token" value="([^"]+)"', form.text).group(1)
    signed = browser.post(
        "/ui/login", data={"name": "ops", "password": PASSWORD, "login_token": token}, follow_redirects=False
    )
    cookie = next(v for k, v in signed.headers.multi_items() if k == "set-cookie" and "mls2_ui_session" in v)
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/ui" in cookie


def test_an_action_without_the_sessions_csrf_token_is_refused(browser: TestClient) -> None:
    csrf = sign_in(browser)
    assert browser.post("/ui/api/updates", json={"action": "update"}).status_code == 403
    assert start(browser, "forged").status_code == 403
    assert browser.post("/ui/logout", data={"csrf_token": "forged"}).status_code == 403
    assert browser.get("/ui/").status_code == 200, "a refused action ended the session"
    assert csrf


def test_an_update_runs_live_one_at_a_time_and_is_listed_with_its_flows(browser: TestClient, landed: Settings) -> None:
    assert vacuum_due(landed.paths)
    csrf = sign_in(browser)
    started = start(browser, csrf)
    assert started.status_code == 202, started.text
    update_id = started.json()["update_id"]
    assert start(browser, csrf).status_code == 409, "a second update started while one ran"
    with browser.stream("GET", f"/ui/api/updates/{update_id}/events") as stream:
        first = next(line for line in stream.iter_lines() if line.startswith("event: flow"))
        assert first and update_id in {r["update_id"] for r in browser.get("/ui/api/running").json()["running"]}, (
            "flows were not streamed while the update ran"
        )
    flows, end = finished(browser, update_id)
    assert end["state"] == "COMPLETED" and end["checks"] == "passed", end
    assert not vacuum_due(landed.paths), "the update was not followed by the day's vacuum"
    done = {flow["dataset"] for flow in flows if flow["state"] == "COMPLETED"}
    assert {"qobrix_bronze.properties", "qobrix_silver.property", "reso_gold.property"} <= done
    running_first = [flow["dataset"] for flow in flows if flow["state"] == "RUNNING"]
    assert running_first[0] == "qobrix_bronze.properties", "flows out of the graph's order"
    listed = browser.get("/ui/api/updates").json()
    assert listed["running"] == [] and listed["updates"][0]["update_id"] == update_id
    assert listed["updates"][0]["trigger"] == "manual" and listed["updates"][0]["state"] == "COMPLETED"
    page = browser.get(f"/ui/updates/{update_id}")
    assert page.status_code == 200 and "reso_gold.property" in page.text and "COMPLETED" in page.text
    overview = browser.get("/ui/")
    assert "flowchart LR" in overview.text and f"/ui/updates/{update_id}" in overview.text
    assert "class reso_gold__property completed" in overview.text
    gold_rows = next(flow for flow in update_flows(landed.paths, update_id) if flow.dataset == "reso_gold.property")
    selected = browser.get("/ui/", params={"update": update_id})
    label = f"reso_gold.property<br/>materialized_view<br/>COMPLETED {gold_rows.output_rows:,} rows"
    assert html.escape(label, quote=False) in selected.text
    assert browser.get("/ui/", params={"update": "no-such-update"}).status_code == 404
    assert "rows in" in page.text and gold_rows.input_rows, "the update's page does not show the rows checked"


def test_a_canceled_update_leaves_the_last_snapshot_served(browser: TestClient, landed: Settings) -> None:
    run_update(landed.paths)
    published = landed.paths.snapshot_pointer.read_bytes()
    with SandboxServer(SandboxWorld(seed=4, properties=15)) as server:
        make_sync(landed, server)()
    csrf = sign_in(browser)
    update_id = start(browser, csrf).json()["update_id"]
    canceled = browser.post(f"/ui/api/updates/{update_id}/cancel", headers={"X-CSRF-Token": csrf})
    assert canceled.status_code == 202
    _, end = finished(browser, update_id)
    assert end["state"] == "CANCELED"
    assert landed.paths.snapshot_pointer.read_bytes() == published
    assert browser.post(f"/ui/api/updates/{update_id}/cancel", headers={"X-CSRF-Token": csrf}).status_code == 409


def test_requests_that_cannot_run_say_why(browser: TestClient) -> None:
    csrf = sign_in(browser)
    unknown = start(browser, csrf, "refresh_selection", datasets=["reso_gold.nope"])
    assert unknown.status_code == 400 and "reso_gold.nope" in unknown.text
    assert start(browser, csrf, "refresh_selection").status_code == 400
    assert "unknown action" in start(browser, csrf, "explode").text
    without_qobrix = start(browser, csrf, "sync_update")
    assert without_qobrix.status_code == 400 and "QOBRIX_API_BASE_URL" in without_qobrix.text


def test_sign_out_ends_the_session(browser: TestClient) -> None:
    csrf = sign_in(browser)
    out = browser.post("/ui/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/ui/login"
    assert browser.get("/ui/", follow_redirects=False).status_code == 303


def test_operators_are_added_listed_and_removed_with_their_rules(settings: Settings, monkeypatch) -> None:
    monkeypatch.setenv("MLS2_DATA_DIR", str(settings.paths.root))
    runner = CliRunner()
    added = runner.invoke(mls2, ["operators", "add", "anna", "--password-stdin"], input=PASSWORD + "\n")
    assert added.exit_code == 0, added.output
    short = runner.invoke(mls2, ["operators", "add", "bob", "--password-stdin"], input="short\n")
    assert short.exit_code == 2 and "at least 12 characters" in short.output
    again = runner.invoke(mls2, ["operators", "add", "anna", "--password-stdin"], input=PASSWORD + "\n")
    assert again.exit_code == 2 and "--replace" in again.output
    assert runner.invoke(mls2, ["operators", "list"]).output.split() == ["anna"]
    registry = OperatorRegistry(load_settings().paths.operators)
    assert registry.verify("anna", PASSWORD) and not registry.verify("anna", PASSWORD + "!")
    assert not registry.verify("nobody", PASSWORD)
    assert "scrypt$" in settings.paths.operators.read_text() and PASSWORD not in settings.paths.operators.read_text()
    assert runner.invoke(mls2, ["operators", "remove", "anna"]).exit_code == 0
    assert runner.invoke(mls2, ["operators", "remove", "anna"]).exit_code == 2
    with pytest.raises(OperatorError, match="letters, digits"):
        registry.add("has space", PASSWORD)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("off", "off"), ("", "off"), ("Continuous", "continuous"), ("every 1 minute", "every 1 minutes"),
     ("every 15 minutes", "every 15 minutes")],
)  # fmt: skip
def test_a_schedule_is_off_continuous_or_every_n_minutes(text: str, expected: str) -> None:
    assert str(Schedule.parse(text)) == expected


@pytest.mark.parametrize("text", ["hourly", "every 0 minutes", "every 2000 minutes", "every minute"])
def test_a_schedule_that_cannot_be_used_says_what_can(text: str) -> None:
    with pytest.raises(ScheduleError, match="off, continuous, or every N minutes"):
        Schedule.parse(text)


def test_every_n_minutes_starts_an_update_when_due_and_outlives_a_restart(landed: Settings) -> None:
    runs = RunManager(landed)
    scheduler = Scheduler(landed, runs)
    assert str(scheduler.schedule()) == "off" and scheduler.tick(datetime.now(UTC)) is None
    scheduler.set("every 1 minutes")
    now = datetime.now(UTC)
    assert scheduler.tick(now + timedelta(seconds=30)) is None, "started before its minute"
    update_id = scheduler.tick(now + timedelta(seconds=61))
    assert update_id is not None
    runs.wait(120)
    run = runs.log.run(update_id)
    assert (run.trigger, run.action, run.state) == ("schedule", "update", "COMPLETED")
    started = datetime.fromisoformat(run.started_at)
    assert scheduler.tick(started + timedelta(seconds=50)) is None, "started again within a minute of the last"
    restarted = Scheduler(landed, RunManager(landed))
    assert str(restarted.schedule()) == "every 1 minutes"


def test_the_setting_is_the_schedule_until_the_ui_sets_one(landed: Settings) -> None:
    configured = load_settings(mls2_data_dir=landed.paths.root, mls2_schedule="continuous")
    scheduler = Scheduler(configured, RunManager(configured))
    assert str(scheduler.schedule()) == "continuous"
    scheduler.set("off")
    assert str(scheduler.schedule()) == "off"


def test_continuous_updates_when_a_sync_has_landed_something_new(landed: Settings) -> None:
    runs = RunManager(landed)
    scheduler = Scheduler(landed, runs)
    scheduler.set("continuous")
    first = scheduler.tick(datetime.now(UTC))
    assert first is not None, "landed files no update has seen did not start one"
    runs.wait(120)
    assert scheduler.tick(datetime.now(UTC)) is None, "an update started with nothing new landed"
    with SandboxServer(SandboxWorld(seed=9, properties=5)) as server:
        make_sync(landed, server)()
    assert scheduler.tick(datetime.now(UTC)) is not None
    runs.wait(120)


def test_one_serving_process_schedules(landed: Settings) -> None:
    first = Scheduler(landed, RunManager(landed))
    second = Scheduler(landed, RunManager(landed))
    try:
        assert first.start() and not second.start()
    finally:
        first.stop()
    assert second.start()
    second.stop()


def test_the_schedule_is_set_over_http_with_the_sessions_csrf_token(browser: TestClient) -> None:
    csrf = sign_in(browser)
    headers = {"X-CSRF-Token": csrf}
    bad = browser.post("/ui/api/schedule", json={"schedule": "hourly"}, headers=headers)
    assert bad.status_code == 400 and "every N minutes" in bad.text
    assert browser.post("/ui/api/schedule", json={"schedule": "every 5 minutes"}).status_code == 403
    assert browser.post("/ui/api/schedule", json={"schedule": "every 5 minutes"}, headers=headers).json() == {
        "schedule": "every 5 minutes"
    }
    assert browser.get("/ui/api/schedule").json() == {"schedule": "every 5 minutes"}
    assert "every 5 minutes" in browser.get("/ui/").text


@pytest.fixture(scope="module")
def defective(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A sandbox with defects synced and run through one update (integrity suite included); the
    tests reading it change nothing but their own sessions."""
    settings = load_settings(mls2_data_dir=tmp_path_factory.mktemp("quality") / "data")
    with SandboxServer(SandboxWorld(seed=5, properties=30), faults=FaultConfig(defect_rate=0.15)) as server:
        make_sync(settings, server)()
    OperatorRegistry(settings.paths.operators).add("ops", PASSWORD)
    run_update(settings.paths)
    run_integrity(settings)
    return settings


@pytest.fixture
def quality_browser(defective: Settings) -> Iterator[TestClient]:
    """A client of the served application over the defective lakehouse, not signed in."""
    with TestClient(serving_app(defective), base_url="http://testserver") as client:
        yield client


def test_a_datasets_page_shows_its_expectations_and_their_rows_per_update(quality_browser: TestClient) -> None:
    sign_in(quality_browser)
    page = quality_browser.get("/ui/datasets/qobrix_silver.property")
    assert page.status_code == 200 and "name_present" in page.text and "drop" in page.text
    chart = json.loads(re.search(r'id="chart-data">(.*?)</script>', page.text, re.S).group(1))
    assert len(chart["labels"]) == 1 and "name_present" in chart["series"]
    assert any(sum(rows["failed"]) for rows in chart["series"].values()), "the defects broke no rule"
    assert quality_browser.get("/ui/datasets/reso_gold.nope").status_code == 404


def test_the_quarantine_browser_finds_rows_by_rule_with_their_sync_and_page(
    quality_browser: TestClient, defective: Settings
) -> None:
    sign_in(quality_browser)
    quality = quality_browser.get("/ui/quality")
    links = re.findall(r"/ui/quarantine\?dataset=([\w.]+)&amp;rule=(\w+)", quality.text)
    dataset, rule = next(link for link in links if link[0] == "qobrix_silver.property")
    found = quality_browser.get("/ui/quarantine", params={"dataset": dataset, "rule": rule})
    rows = re.findall(r'<td class="rules">([^<]*)</td>\s*<td>([^<]*)</td><td>(\d*)</td>', found.text)
    assert rows and all(rule in rules.split(", ") and sync and page for rules, sync, page in rows), rows
    landed = {path.stem for path in (defective.paths.landing / "_manifests").iterdir()}
    assert {sync for _, sync, _ in rows} <= landed, "a row names a sync that landed nothing"
    nothing = quality_browser.get("/ui/quarantine", params={"rule": "no_such_rule"})
    assert "No quarantined row matches" in nothing.text
    assert quality_browser.get("/ui/quarantine", params={"page": 0}).status_code in (400, 422)


def test_the_quality_page_shows_integrity_results_and_freshness(quality_browser: TestClient) -> None:
    sign_in(quality_browser)
    page = quality_browser.get("/ui/quality")
    assert page.status_code == 200
    assert "reconciliation" in page.text and "landed_listings" in page.text, "no integrity results"
    for table in ("reso_gold.property", "reso_gold.media", "reso_gold.lookup"):
        assert f"/ui/datasets/{table}" in page.text
    assert "published" in page.text and "never" not in page.text.split("Freshness", 1)[1].split("</p>", 1)[0]


def test_the_data_docs_are_served_to_operators_only_and_only_from_their_folder(quality_browser: TestClient) -> None:
    assert quality_browser.get("/ui/integrity/docs/index.html", follow_redirects=False).status_code == 303
    sign_in(quality_browser)
    docs = quality_browser.get("/ui/integrity/docs/index.html")
    assert docs.status_code == 200 and "reconciliation" in docs.text
    assert docs.headers["content-security-policy"] == "sandbox allow-scripts allow-popups"
    escape = quality_browser.get("/ui/integrity/docs/..%2F..%2Fstate%2Foperators.json")
    assert escape.status_code == 404 and "scrypt" not in escape.text


def test_a_run_holds_the_pipeline_lock_from_start_to_end_and_any_process_can_cancel_it(landed: Settings) -> None:
    here, elsewhere = RunManager(landed), RunManager(landed)
    update_id = here.start(RunRequest("update"))
    with pytest.raises(PipelineBusy):
        run_update(landed.paths)  # `mls2 pipeline run` from a shell
    with pytest.raises(RunBusy):
        elsewhere.start(RunRequest("update"))  # another serving process
    elsewhere.log.abandon_unfinished()
    assert here.log.run(update_id).state == "RUNNING", "a running run was taken for a stopped server's"
    assert elsewhere.cancel(update_id)
    here.wait(120)
    assert here.log.run(update_id).state == "CANCELED"
    assert not elsewhere.cancel(update_id)
    assert run_update(landed.paths).state == "COMPLETED", "the run kept the lock"


def test_a_schedule_set_only_in_the_settings_starts_at_once_on_a_fresh_install(landed: Settings) -> None:
    configured = load_settings(mls2_data_dir=landed.paths.root, mls2_schedule="every 15 minutes")
    runs = RunManager(configured)
    assert Scheduler(configured, runs).tick(datetime.now(UTC)) is not None
    runs.wait(120)


def test_sign_ins_are_limited_and_an_error_in_the_address_is_not_shown(browser: TestClient) -> None:
    shown = browser.get("/ui/login", params={"error": "Your session expired: call +1 555"})
    assert shown.status_code == 200 and "555" not in shown.text
    for _ in range(5):
        form = browser.get("/ui/login")
        token = re.search(r'name="login_token" value="([^"]+)"', form.text).group(1)
        refused = browser.post("/ui/login", data={"name": "ops", "password": "wrong password!", "login_token": token})
        assert refused.status_code == 401
    form = browser.get("/ui/login")
    token = re.search(r'name="login_token" value="([^"]+)"', form.text).group(1)
    limited = browser.post("/ui/login", data={"name": "ops", "password": PASSWORD, "login_token": token})
    assert limited.status_code == 429 and "Too many failed sign-ins" in limited.text


def test_secrets_on_disk_are_the_owners_only(landed: Settings) -> None:
    SessionStore(landed.paths.ui_state).open("ops")
    assert landed.paths.operators.stat().st_mode & 0o777 == 0o600
    assert landed.paths.ui_state.stat().st_mode & 0o777 == 0o600


def test_a_run_is_abandoned_only_when_no_process_owns_it(settings: Settings) -> None:
    """A serving process starting marks FAILED the runs left RUNNING by a stopped one; a run whose
    process lives stays RUNNING, also after its update released the pipeline lock (its integrity
    suite and vacuum still to come), and also when that process was killed outright it is not."""
    log = RunLog(settings)
    for run_id in ("alive", "killed", "older"):
        log.begin(run_id, RunRequest("update"))
    owned = log.own("alive")
    killed = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os; from conf.settings import load_settings; from pipelines.ui.runs import RunLog; "
            f"RunLog(load_settings(mls2_data_dir={str(settings.paths.root)!r})).own('killed'); "
            "os.kill(os.getpid(), 9)",
        ],
        check=False,
    )
    assert killed.returncode == -9
    log.abandon_unfinished()
    assert {run_id: log.run(run_id).state for run_id in ("alive", "killed", "older")} == {
        "alive": "RUNNING",
        "killed": "FAILED",
        "older": "FAILED",  # a run of a version before runs were owned
    }
    log.release("alive", owned)
    log.abandon_unfinished()
    assert log.run("alive").state == "FAILED"
