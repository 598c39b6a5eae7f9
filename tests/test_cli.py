"""The `mls2` command: help that explains, and clear exits on bad input."""

import re
import socket
import subprocess
import sys

import orjson
import pytest
from typer.testing import CliRunner

from conf.cli import app
from pipelines.embedded import read_events

runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "mentions"),
    [
        ([], ["sandbox", "sync", "pipeline", "serve", "demo", "clients", "databricks", "reso", "integrity"]),
        (["reso", "check"], ["--url", "--token", "--client-id", "--page-size"]),
        (["databricks", "run"], ["--full-refresh", "--refresh", "--no-wait", "--pipeline", "Exit code"]),
        (["databricks", "events"], ["--update", "--type", "--limit"]),
        (["clients", "add"], ["--rotate", "once"]),
        (["sync"], ["--full-refresh", "--reconcile", "--entities", "--max-properties", "status"]),
        (["sandbox", "serve"], ["--port", "--properties", "--seed"]),
        (["pipeline", "run"], ["--full-refresh", "--refresh", "--full-refresh-selection"]),
        (["serve"], ["--port", "/odata"]),
        (["demo"], ["sandbox", "sync", "pipeline"]),
    ],
)
def test_help_explains_every_command(args: list[str], mentions: list[str]) -> None:
    result = runner.invoke(app, [*args, "--help"])
    assert result.exit_code == 0
    for word in mentions:
        assert word in result.output


def test_commands_start_without_loading_the_servers_the_http_client_or_the_certification_check() -> None:
    """The API and the sandbox server load with `serve`, `sandbox serve` and `demo` only, the Qobrix
    client with `sync`, `sandbox` and `demo`, the certification check with `reso`: every pipeline run
    would otherwise spend most of a second importing them."""
    servers = [
        *("fastapi", "uvicorn", "graphql_odata.main", "ingestion.sandbox.server", "odata_query", "databricks.sdk"),
        *("requests", "ingestion.cli", "ingestion.client", "graphql_odata.certification.check", "jsonschema"),
    ]
    loaded = subprocess.run(
        [sys.executable, "-c", f"import sys, conf.cli; print([m for m in {servers!r} if m in sys.modules])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert loaded == "[]"


def test_a_mistyped_command_is_refused_with_the_commands_it_may_mean() -> None:
    """Also a command loaded only when it runs (`sync`) is suggested."""
    result = runner.invoke(app, ["snyc"])
    assert result.exit_code == 2
    assert "No such command 'snyc'" in result.output and "'sync'" in result.output


def test_sync_without_credentials_exits_2_naming_the_settings() -> None:
    result = runner.invoke(app, ["sync"])
    assert result.exit_code == 2
    assert "QOBRIX_API_BASE_URL" in result.output and "mls2 demo" in result.output


def test_sync_with_unknown_entity_exits_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QOBRIX_API_BASE_URL", "http://127.0.0.1:9/api/v2")
    monkeypatch.setenv("QOBRIX_API_USER", "u")
    monkeypatch.setenv("QOBRIX_API_KEY", "k")
    result = runner.invoke(app, ["sync", "--entities", "properties,unicorns"])
    assert result.exit_code == 2 and "unknown entities: unicorns" in result.output


def test_bad_numbers_are_refused_by_the_parser() -> None:
    result = runner.invoke(app, ["sync", "--max-properties", "0"])
    assert result.exit_code == 2 and "max-properties" in result.output


def test_pipeline_run_with_unknown_dataset_exits_1() -> None:
    result = runner.invoke(app, ["pipeline", "run", "--refresh", "qobrix_silver.nothing"])
    assert result.exit_code == 1 and "unknown datasets: qobrix_silver.nothing" in result.output


def test_pipeline_graph_lists_the_datasets() -> None:
    result = runner.invoke(app, ["pipeline", "graph"])
    assert result.exit_code == 0
    assert "reso_gold.property" in result.output and "auto_cdc" in result.output
    assert "property_id = qobrix_silver.property.id" in result.output
    assert "qobrix_silver.project via qobrix_silver.property.project" in result.output


def configure_qobrix(monkeypatch: pytest.MonkeyPatch, url: str, tmp_path, key: str = "sandbox-key") -> None:
    monkeypatch.setenv("QOBRIX_API_BASE_URL", url)
    monkeypatch.setenv("QOBRIX_API_USER", "sandbox-user")
    monkeypatch.setenv("QOBRIX_API_KEY", key)
    monkeypatch.setenv("MLS2_DATA_DIR", str(tmp_path / "cli-data"))
    monkeypatch.setenv("MLS2_HTTP_RETRIES", "1")


def test_sync_lands_and_reports_then_status_shows_watermarks(
    monkeypatch: pytest.MonkeyPatch, tmp_path, sandbox
) -> None:
    configure_qobrix(monkeypatch, sandbox.base_url, tmp_path)
    result = runner.invoke(app, ["sync", "--entities", "properties,agents", "--max-in-flight", "2"])
    assert result.exit_code == 0, result.output
    assert "properties" in result.output and "per 1,000 properties" in result.output
    status = runner.invoke(app, ["sync", "status"])
    assert status.exit_code == 0 and "Watermarks" in status.output and "succeeded" in status.output


def test_sync_reconcile_shows_what_it_reconciled_and_refuses_a_full_refresh_beside_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path, sandbox
) -> None:
    configure_qobrix(monkeypatch, sandbox.base_url, tmp_path)
    assert runner.invoke(app, ["sync", "--entities", "properties"]).exit_code == 0
    result = runner.invoke(app, ["sync", "--entities", "properties", "--reconcile"])
    assert result.exit_code == 0, result.output
    [row] = [line for line in result.output.splitlines() if "properties" in line and "incremental" in line]
    assert row.split("│")[-2].strip() == "yes"
    both = runner.invoke(app, ["sync", "--reconcile", "--full-refresh"])
    assert both.exit_code == 2 and "--reconcile belongs to an incremental sync" in both.output


def test_sync_with_refused_credentials_exits_2(monkeypatch: pytest.MonkeyPatch, tmp_path, sandbox) -> None:
    configure_qobrix(monkeypatch, sandbox.base_url, tmp_path, key="wrong")
    result = runner.invoke(app, ["sync", "--entities", "agents"])
    assert result.exit_code == 2 and "refused the credentials" in result.output


def test_sync_against_an_unreachable_qobrix_exits_3(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    configure_qobrix(monkeypatch, "http://127.0.0.1:9/api/v2", tmp_path)
    result = runner.invoke(app, ["sync", "--entities", "agents"])
    assert result.exit_code == 3 and "Watermarks did not move" in result.output


def test_sync_status_before_any_sync(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("MLS2_DATA_DIR", str(tmp_path / "nothing"))
    result = runner.invoke(app, ["sync", "status"])
    assert result.exit_code == 0 and "No sync has run yet" in result.output


def test_pipeline_graph_renders_mermaid_and_graphviz() -> None:
    mermaid = runner.invoke(app, ["pipeline", "graph", "--format", "mermaid"])
    assert mermaid.exit_code == 0 and mermaid.output.startswith("flowchart LR")
    assert "qobrix_silver__property --> reso_gold__property" in mermaid.output
    dot = runner.invoke(app, ["pipeline", "graph", "--format", "dot"])
    assert dot.exit_code == 0 and '"qobrix_bronze.properties" -> "qobrix_silver.property_changes";' in dot.output
    assert runner.invoke(app, ["pipeline", "graph", "--format", "png"]).exit_code == 2


def test_pipeline_events_show_the_latest_update(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("MLS2_DATA_DIR", str(tmp_path / "events"))
    assert "no pipeline update has run yet" in runner.invoke(app, ["pipeline", "events"]).output
    assert runner.invoke(app, ["pipeline", "run"]).exit_code == 0
    result = runner.invoke(app, ["pipeline", "events"])
    assert result.exit_code == 0
    assert "create_update" in result.output and "COMPLETED" in result.output
    only_flows = runner.invoke(app, ["pipeline", "events", "--type", "update_progress"])
    assert "flow_progress" not in only_flows.output and "update_progress" in only_flows.output
    planned = runner.invoke(app, ["pipeline", "events", "--type", "planning_information"])
    assert "qobrix_silver.media" in planned.output and "COMPLETE_RECOMPUTE" in planned.output
    assert runner.invoke(app, ["pipeline", "events", "--update", "nope"]).exit_code == 1


def test_clients_add_list_rotate_remove(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("MLS2_DATA_DIR", str(tmp_path / "data"))
    added = runner.invoke(app, ["clients", "add", "acme", "--requests-per-minute", "60"])
    assert added.exit_code == 0 and "client_secret:" in added.output and "/oauth/token" in added.output
    secret = added.output.split("client_secret:")[1].split()[0]
    again = runner.invoke(app, ["clients", "add", "acme"])
    assert again.exit_code == 2 and "exists" in again.output
    rotated = runner.invoke(app, ["clients", "add", "acme", "--rotate"])
    assert rotated.exit_code == 0 and secret not in rotated.output
    listed = runner.invoke(app, ["clients", "list"])
    assert "acme" in listed.output and "60 requests/minute" in listed.output and secret not in listed.output
    assert runner.invoke(app, ["clients", "add", "no spaces"]).exit_code == 2
    assert runner.invoke(app, ["clients", "remove", "acme"]).exit_code == 0
    assert runner.invoke(app, ["clients", "remove", "acme"]).exit_code == 2


def test_serve_on_databricks_without_its_settings_exits_2_naming_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLS2_API_BACKEND", "databricks")
    result = runner.invoke(app, ["serve"])
    assert result.exit_code == 2
    assert "DATABRICKS_HOST" in result.output and "DATABRICKS_HTTP_PATH (or DATABRICKS_WAREHOUSE_ID)" in result.output


def test_demo_with_its_api_port_taken_fails_before_syncing(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("MLS2_DATA_DIR", str(tmp_path / "demo"))
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = runner.invoke(app, ["demo", "--port", str(port)])
    assert result.exit_code == 1
    assert f"the API port 127.0.0.1:{port} is not free" in result.output and "--port" in result.output
    assert not (tmp_path / "demo" / "landing").exists()


def test_pipeline_run_vacuums_once_a_day_and_vacuum_takes_a_retention(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    monkeypatch.setenv("MLS2_DATA_DIR", str(tmp_path / "data"))
    first = runner.invoke(app, ["pipeline", "run"])
    assert first.exit_code == 0 and "Vacuumed the lakehouse: 0 data files older than 168 h" in first.output
    again = runner.invoke(app, ["pipeline", "run", "--full-refresh"])
    assert again.exit_code == 0 and "Vacuumed" not in again.output, "vacuumed twice within a day"
    result = runner.invoke(app, ["pipeline", "vacuum", "--retain-hours", "0"])
    assert result.exit_code == 0 and "older than 0 h removed" in result.output
    monkeypatch.setenv("MLS2_LAKEHOUSE_RETENTION_HOURS", "0")
    off = runner.invoke(app, ["pipeline", "vacuum"])
    assert off.exit_code == 2 and "pass --retain-hours" in off.output
    (tmp_path / "data" / "state" / "last_vacuum").unlink()
    nothing_new = runner.invoke(app, ["pipeline", "run"]).output
    assert "Vacuumed" not in nothing_new
    # Flows with nothing new to read are counted, not listed.
    assert "SKIPPED" not in nothing_new and "qobrix_bronze.properties" not in nothing_new
    skipped = re.search(r"(\d+) datasets skipped: nothing new to read", " ".join(nothing_new.split()))
    progress = read_events(tmp_path / "data" / "lakehouse", event_type="flow_progress", limit=1000)
    statuses = [orjson.loads(event["details"])["flow_progress"]["status"] for event in progress]
    assert skipped and int(skipped.group(1)) == statuses.count("SKIPPED") > 0, nothing_new
