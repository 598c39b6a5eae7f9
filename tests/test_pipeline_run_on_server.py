"""`mls2 pipeline run` beside a running server: the update is sent to the server the data folder
announces (`pipelines.ui.control`), runs there as the UI's updates do, and is reported in the shell;
without a server, with a stale announcement, or with --here, it runs in the shell's process."""

import ast
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import requests
from typer.testing import CliRunner

from conf.cli import app as mls2
from conf.cli import serving_app
from conf.settings import Settings, load_settings
from graphql_odata.main import create_app
from pipelines import run_update
from pipelines._engine.events import read_events
from pipelines._engine.runner import Update
from pipelines.cli import server_action
from pipelines.embedded import pipeline_lock
from pipelines.ui.announcement import announced, local_url
from pipelines.ui.control import RunningServer, ServerUnreachable, announced_server
from pipelines.ui.runs import RunLog
from pipelines.ui.views import SHELL_OPERATOR, mount_pipeline_ui
from tests.bounded import wait_until
from tests.conftest import live_token, served

runner = CliRunner()
ENGINE_LIBRARIES = ("duckdb", "pyarrow", "deltalake", "sqlglot", "pandas")


@pytest.fixture
def quiet(landed: Settings) -> Settings:
    """`landed`, its updates not followed by the integrity suite (not what these tests are about)."""
    return load_settings(mls2_data_dir=landed.paths.root, mls2_integrity_after_update=False)


@pytest.fixture
def server(quiet: Settings) -> Iterator[str]:
    """`mls2 serve`'s application on a free port, announced for the data folder: its URL."""
    with served(serving_app(quiet)) as url, announced(quiet.paths, url):
        yield url


def pipeline_run(settings: Settings, *options: str):
    environment = {"MLS2_DATA_DIR": str(settings.paths.root), "MLS2_INTEGRITY_AFTER_UPDATE": "false"}
    return runner.invoke(mls2, ["pipeline", "run", *options], env=environment)


def said(result) -> str:
    """A command's output, its lines as wrapped for the terminal joined again."""
    return " ".join(result.output.split())


def cause(settings: Settings, update_id: str) -> dict:
    """The event log's `create_update` of `update_id`."""
    [created] = read_events(settings.paths.lakehouse, update=update_id, event_type="create_update", limit=5)
    return orjson.loads(created["details"])["create_update"]


def latest_update(settings: Settings) -> str:
    return read_events(settings.paths.lakehouse, event_type="create_update", limit=1)[0]["update_id"]


def test_pipeline_run_sends_the_update_to_the_announced_server_and_prints_what_it_did(
    quiet: Settings, server: str
) -> None:
    result = pipeline_run(quiet)
    assert result.exit_code == 0, result.output
    [run] = RunLog(quiet).runs()
    assert (run.state, run.trigger, run.operator, run.action) == ("COMPLETED", "api", SHELL_OPERATOR, "update")
    assert f"Update {run.run_id} runs on the server: {server}/ui/updates/{run.run_id}" in result.output
    assert cause(quiet, run.run_id)["cause"] == "API_CALL"
    property_flow = next(flow for flow in run.report["flows"] if flow["dataset"] == "reso_gold.property")
    assert property_flow["status"] == "COMPLETED" and property_flow["output_records"] == 15
    row = next(line for line in result.output.splitlines() if "reso_gold.property " in line)
    assert row.split("│")[1:-1][1:4] == [" COMPLETED ", "    15 ", "     15 "], row
    assert f"Published gold snapshot of update {run.run_id}" in result.output


def test_with_here_or_without_a_server_the_update_runs_in_the_shell(quiet: Settings, server: str) -> None:
    here = pipeline_run(quiet, "--here")
    assert here.exit_code == 0, here.output
    assert RunLog(quiet).runs() == [], "--here sent the update to the server"
    assert cause(quiet, latest_update(quiet))["cause"] == "USER_ACTION"
    quiet.paths.server_announcement.unlink()
    unannounced = pipeline_run(quiet)
    assert unannounced.exit_code == 0 and "runs on the server" not in unannounced.output
    assert RunLog(quiet).runs() == []


def test_an_update_mixing_two_selections_runs_in_the_shell_and_says_so(quiet: Settings, server: str) -> None:
    run_update(quiet.paths)
    mixed = pipeline_run(quiet, "--refresh", "reso_gold.office", "--full-refresh-selection", "reso_gold.member")
    assert mixed.exit_code == 0, mixed.output
    assert "this one runs here" in said(mixed) and RunLog(quiet).runs() == []
    created = cause(quiet, latest_update(quiet))
    assert created["refresh_selection"] == ["reso_gold.member", "reso_gold.office"]  # every dataset selected
    assert created["full_refresh"] == ["reso_gold.member"]


@pytest.mark.parametrize(
    ("options", "action"),
    [
        ({}, ("update", [])),
        ({"full_refresh": True}, ("full_refresh", [])),
        ({"refresh": ["a.b"]}, ("refresh_selection", ["a.b"])),
        ({"full_refresh_selection": ["a.b"]}, ("full_refresh_selection", ["a.b"])),
        ({"refresh": ["a.b"], "full_refresh_selection": ["c.d"]}, None),
        ({"full_refresh": True, "refresh": ["a.b"]}, None),
    ],
)
def test_each_update_maps_to_the_ui_action_that_runs_it(options: dict, action: tuple | None) -> None:
    selection = {"full_refresh": False, "refresh": None, "full_refresh_selection": None, **options}
    assert server_action(**selection) == action


def test_a_full_refresh_selection_sent_to_the_server_recomputes_only_those_datasets(
    quiet: Settings, server: str
) -> None:
    run_update(quiet.paths)
    result = pipeline_run(quiet, "--full-refresh-selection", "reso_gold.office")
    assert result.exit_code == 0, result.output
    [run] = RunLog(quiet).runs()
    assert run.action == "full_refresh_selection" and run.datasets == ["reso_gold.office"]
    created = cause(quiet, run.run_id)
    assert created["full_refresh"] == ["reso_gold.office"] == created["refresh_selection"]
    assert {flow["dataset"] for flow in run.report["flows"] if flow["status"] != "SKIPPED"} == {"reso_gold.office"}


def test_what_the_server_refuses_is_said_with_its_reason(quiet: Settings, server: str) -> None:
    unknown = pipeline_run(quiet, "--refresh", "reso_gold.nope")
    assert unknown.exit_code == 1 and "unknown datasets: reso_gold.nope" in said(unknown), unknown.output
    with pipeline_lock(quiet.paths, "a vacuum from another shell"):
        busy = pipeline_run(quiet)
    assert busy.exit_code == 1 and "a vacuum from another shell" in said(busy), busy.output
    assert RunLog(quiet).runs() == []


def test_a_failed_update_on_the_server_fails_the_command(quiet: Settings) -> None:
    wanting = quiet.model_copy(update={"mls2_min_free_mb": 2**40})  # more free disk than any machine has
    with served(serving_app(wanting)) as url, announced(quiet.paths, url):
        result = pipeline_run(quiet)
    [run] = RunLog(quiet).runs()
    assert run.state == "FAILED" and result.exit_code == 1, result.output
    assert "the update failed:" in said(result) and "free" in run.error, (run.error, result.output)


def test_the_shell_token_opens_the_ui_api_and_nothing_else_does(quiet: Settings, server: str) -> None:
    token = json.loads(quiet.paths.server_announcement.read_text())["token"]
    assert quiet.paths.server_announcement.stat().st_mode & 0o777 == 0o600

    def running(bearer: str) -> int:
        answer = requests.get(f"{server}/ui/api/running", headers={"Authorization": f"Bearer {bearer}"}, timeout=10)
        return answer.status_code

    assert running(token) == 200
    assert running(token[:-1] + ("A" if token[-1] != "A" else "B")) == 401
    assert running(live_token(quiet, server)) == 401, "an OData client's token opened the pipeline UI"
    assert requests.get(f"{server}/ui/", headers={"Authorization": f"Bearer {token}"}, timeout=10).url.endswith(
        "/ui/login"
    ), "the shell's token opened a page meant for a signed-in browser"


def test_an_announcement_is_taken_back_and_a_stale_or_damaged_one_runs_the_update_here(quiet: Settings) -> None:
    with served(serving_app(quiet)) as url:
        with announced(quiet.paths, url):
            assert announced_server(quiet.paths) == RunningServer(url, json.loads(
                quiet.paths.server_announcement.read_text())["token"])  # fmt: skip
        assert not quiet.paths.server_announcement.exists()
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    here = str(quiet.paths.root.resolve())
    stale = {"url": "http://127.0.0.1:9", "pid": int(ended.stdout), "token": "t", "data_dir": here}
    quiet.paths.server_announcement.write_bytes(orjson.dumps(stale))
    with pytest.raises(ServerUnreachable, match="has stopped"):
        announced_server(quiet.paths)
    result = pipeline_run(quiet)
    assert result.exit_code == 0 and "has stopped: the update runs here" in said(result), result.output
    quiet.paths.server_announcement.write_bytes(orjson.dumps({**stale, "pid": os.getpid()}))
    with pytest.raises(ServerUnreachable, match=re.escape("no server answers at http://127.0.0.1:9")):
        announced_server(quiet.paths)
    quiet.paths.server_announcement.write_bytes(orjson.dumps({**stale, "pid": True}))
    with pytest.raises(ServerUnreachable, match="is not a readable server announcement"):
        announced_server(quiet.paths)
    quiet.paths.server_announcement.write_text("{not json")
    damaged = pipeline_run(quiet)
    assert damaged.exit_code == 0 and "is not a readable server announcement" in said(damaged), damaged.output


def test_a_copy_of_a_served_folder_runs_its_updates_itself(quiet: Settings, server: str, tmp_path: Path) -> None:
    """A folder copied while its server ran keeps the announcement: its updates are its own."""
    run_update(quiet.paths)
    copy = load_settings(mls2_data_dir=tmp_path / "copy", mls2_integrity_after_update=False)
    shutil.copytree(quiet.paths.root, copy.paths.root)
    result = pipeline_run(copy)
    assert result.exit_code == 0 and "(a copied folder?)" in said(result), result.output
    assert RunLog(quiet).runs() == [], "the copy's update ran on the original folder's server"
    assert latest_update(copy) != latest_update(quiet)


def test_an_update_whose_integrity_check_fails_on_the_server_exits_3(quiet: Settings) -> None:
    """The server runs the steps after an update (the integrity suite, from `conf.cli`); one that
    reports a critical failure makes the shell exit 3, as an update of its own would."""
    app = create_app(quiet)
    mount_pipeline_ui(app, quiet, after_update=lambda settings: False)
    with served(app) as url, announced(quiet.paths, url):
        result = pipeline_run(quiet)
    assert result.exit_code == 3 and "a critical integrity expectation failed" in said(result), result.output
    [run] = RunLog(quiet).runs()
    assert (run.state, run.checks) == ("COMPLETED", "failed")


@pytest.mark.parametrize(
    ("host", "port", "url"),
    [
        ("127.0.0.1", 8000, "http://127.0.0.1:8000"),
        ("0.0.0.0", 80, "http://127.0.0.1:80"),
        ("::", 8000, "http://[::1]:8000"),
        ("fe80::1", 9, "http://[fe80::1]:9"),
        ("api.local", 8000, "http://api.local:8000"),
    ],
)
def test_a_shell_reaches_the_server_where_it_listens(host: str, port: int, url: str) -> None:
    assert local_url(host, port) == url


def test_a_run_log_of_an_earlier_version_gains_the_report_column(settings: Settings) -> None:
    import sqlite3

    settings.paths.state.mkdir(parents=True)
    with sqlite3.connect(settings.paths.ui_state) as db:
        db.execute(
            "CREATE TABLE runs (run_id TEXT PRIMARY KEY, action TEXT, trigger TEXT, state TEXT, started_at TEXT, "
            "finished_at TEXT, operator TEXT, datasets TEXT, error TEXT, sync TEXT, checks TEXT, "
            "cancel_requested INTEGER DEFAULT 0)"
        )
        db.execute("INSERT INTO runs (run_id, action, trigger, state) VALUES ('old', 'update', 'manual', 'COMPLETED')")
    log = RunLog(settings)
    assert log.run("old").report is None
    log.record_report("old", {"update_id": "old"})
    assert log.run("old").report == {"update_id": "old"}


def shell(settings: Settings, *arguments: str, check_imports: bool = False) -> subprocess.Popen:
    """`mls2` in a process of its own, Ctrl+C raising KeyboardInterrupt as in a terminal (a test run
    started in the background of a shell inherits SIGINT ignored); with `check_imports`, it prints
    the engine libraries it loaded."""
    terminal = "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
    probe = (
        "import atexit, sys; atexit.register(lambda: print('loaded:', "
        f"[m for m in {ENGINE_LIBRARIES!r} if m in sys.modules], file=sys.stderr)); "
        if check_imports
        else "import sys; "
    )
    code = terminal + probe + f"sys.argv = ['mls2', *{list(arguments)!r}]; from conf.cli import app; app()"
    environment = {**os.environ, "MLS2_DATA_DIR": str(settings.paths.root), "MLS2_INTEGRITY_AFTER_UPDATE": "false"}
    return subprocess.Popen(
        [sys.executable, "-c", code], env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_a_shell_sending_its_update_loads_no_engine_library(quiet: Settings, server: str) -> None:
    process = shell(quiet, "pipeline", "run", check_imports=True)
    _, errors = process.communicate(timeout=300)
    assert process.returncode == 0, errors
    assert "loaded: []" in errors, errors
    local = shell(quiet, "pipeline", "run", "--here", check_imports=True)
    _, errors = local.communicate(timeout=300)
    assert local.returncode == 0, errors
    loaded = ast.literal_eval(next(line for line in errors.splitlines() if line.startswith("loaded:"))[7:].strip())
    assert {"duckdb", "pyarrow", "deltalake"} <= set(loaded), errors


def test_ctrl_c_in_the_shell_cancels_the_update_on_the_server(
    quiet: Settings, server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The server's update (in this process) waits after its first flow until it is asked to cancel:
    # a small update could otherwise end before the shell's Ctrl+C reaches the server.
    checks, check = itertools.count(), Update.stop_if_canceled

    def waiting_after_the_first_flow(update: Update) -> None:
        if next(checks) == 1:
            update.canceled.wait(timeout=120)
        check(update)

    monkeypatch.setattr(Update, "stop_if_canceled", waiting_after_the_first_flow)
    process = shell(quiet, "pipeline", "run", "--full-refresh")
    log = RunLog(quiet)
    wait_until(lambda: [r for r in log.runs() if r.flows or log.run(r.run_id).flows], timeout=120, what="a flow")
    # Ctrl+C once the shell follows the update (it says so just before), as a person would press it.
    said = ""
    while "runs on the server" not in said:
        line = process.stderr.readline()
        assert line, f"the shell ended before following its update: {said}"
        said += line
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    _, errors = process.communicate(timeout=120)
    errors = said + errors
    [run] = log.runs()
    assert run.state == "CANCELED" and process.returncode == 1, errors
    assert "Asking the server to cancel the update" in errors and "canceled before" in errors
    assert not Path(quiet.paths.snapshot_pointer).exists(), "a canceled first update published"


def test_sigterm_withdraws_the_announcement_and_reaches_the_handler_before_it(settings: Settings) -> None:
    received: list[int] = []

    def recorder(number: int, _frame: object) -> None:
        received.append(number)

    earlier = signal.signal(signal.SIGTERM, recorder)
    try:
        with announced(settings.paths, "http://127.0.0.1:9"):
            assert settings.paths.server_announcement.exists()
            os.kill(os.getpid(), signal.SIGTERM)
            wait_until(lambda: received, timeout=10, what="the SIGTERM handler")
            assert not settings.paths.server_announcement.exists(), "SIGTERM left the announcement"
        assert received == [signal.SIGTERM]
        assert signal.getsignal(signal.SIGTERM) is recorder, "the handler before was not put back"
    finally:
        signal.signal(signal.SIGTERM, earlier)
