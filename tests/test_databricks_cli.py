"""`mls2 databricks run|status|events` against a local server answering as the Databricks REST API
does (tests/databricks_workspace.py): the requests sent (paths, bodies, paging), what is printed, and
the exit codes a scheduler acts on, through the real `databricks-sdk` client."""

from collections.abc import Iterator

import orjson
import pytest
from typer.testing import CliRunner

from conf.cli import app
from pipelines.graph import load_graph
from tests.conftest import PublishedGold
from tests.databricks_workspace import CLIENT_ID, TOKEN, FakeWorkspace, Step, error, flow

runner = CliRunner()
QUALITY = {
    "dropped_records": 2,
    "expectations": [
        {"name": "price_not_negative", "dataset": "qobrix_silver.property", "passed_records": 258, "failed_records": 2},
        {"name": "id_present", "dataset": "qobrix_silver.property", "passed_records": 260, "failed_records": 0},
    ],
}
RUN = [
    Step("INITIALIZING"),
    Step("SETTING_UP_TABLES"),
    Step("RUNNING", [flow("qobrix_bronze.property", "RUNNING"),
                     flow("qobrix_bronze.property", "COMPLETED", metrics={"num_output_rows": 260})]),
    Step("RUNNING", [flow("qobrix_silver.property", "COMPLETED", metrics={"num_output_rows": 258},
                          data_quality=QUALITY)]),
    Step("COMPLETED"),
]  # fmt: skip


@pytest.fixture
def workspace(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeWorkspace]:
    with FakeWorkspace() as fake:
        for name in ("DATABRICKS_CLIENT_ID", "DATABRICKS_CLIENT_SECRET", "DATABRICKS_CONFIG_PROFILE"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("DATABRICKS_CONFIG_FILE", "/nonexistent/databrickscfg")
        monkeypatch.setenv("DATABRICKS_HOST", fake.host)
        monkeypatch.setenv("DATABRICKS_TOKEN", TOKEN)
        monkeypatch.setenv("MLS2_DATABRICKS_POLL_SECONDS", "0.01")
        fake.script = RUN
        yield fake


def mls2(*args: str):
    return runner.invoke(app, ["databricks", *args])


def said(result) -> str:
    """What a command printed, with the console's line wrapping undone."""
    return " ".join(result.output.split())


def starts(workspace: FakeWorkspace) -> list:
    return [r for r in workspace.api_requests() if r.method == "POST" and r.path.endswith("/updates")]


def test_run_starts_an_incremental_update_and_follows_it_flow_by_flow(workspace: FakeWorkspace) -> None:
    pipeline = workspace.add_pipeline()
    result = mls2("run", "--pipeline", pipeline.pipeline_id)
    assert result.exit_code == 0, result.output
    [start] = starts(workspace)
    assert start.path == f"/api/2.0/pipelines/{pipeline.pipeline_id}/updates"
    assert start.body == {"full_refresh": False}
    assert all(r.authorization == f"Bearer {TOKEN}" for r in workspace.api_requests())
    update_id = pipeline.updates[0]["update_id"]
    polls = [r for r in workspace.api_requests() if r.path.endswith(f"/updates/{update_id}")]
    assert len(polls) == len(RUN), "polled once per state until COMPLETED, then stopped"
    assert f"Started update {update_id}" in said(result)
    assert "qobrix_bronze.property: COMPLETED" in said(result)
    assert "qobrix_silver.property: COMPLETED" in said(result)
    assert said(result).count("qobrix_bronze.property: COMPLETED") == 1, "each event is printed once"
    assert "qobrix_bronze.property: RUNNING" not in said(result)
    assert f"Update {update_id} COMPLETED" in said(result)


def test_run_finds_the_pipeline_by_its_exact_name(workspace: FakeWorkspace) -> None:
    workspace.add_pipeline("mls2_prod")
    workspace.add_pipeline("mls2-dev")  # what LIKE's `_` also matches
    pipeline = workspace.add_pipeline("mls2_dev")
    result = mls2("run", "--no-wait")
    assert result.exit_code == 0, result.output
    lookup = workspace.api_requests()[0]
    assert (lookup.method, lookup.path, lookup.query["filter"]) == ("GET", "/api/2.0/pipelines", "name LIKE 'mls2_dev'")
    assert starts(workspace)[0].path == f"/api/2.0/pipelines/{pipeline.pipeline_id}/updates"


def test_run_without_waiting_prints_only_the_update_id_and_does_not_poll(workspace: FakeWorkspace) -> None:
    pipeline = workspace.add_pipeline()
    result = mls2("run", "--pipeline", pipeline.pipeline_id, "--no-wait")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == pipeline.updates[0]["update_id"]
    assert [r.method for r in workspace.api_requests()] == ["POST"]


def test_full_refresh_and_selections_are_sent_as_the_api_names_them(workspace: FakeWorkspace) -> None:
    pipeline = workspace.add_pipeline()
    assert mls2("run", "--pipeline", pipeline.pipeline_id, "--full-refresh", "--no-wait").exit_code == 0
    selection = "qobrix_silver.property, reso_gold.property"
    assert mls2("run", "--pipeline", pipeline.pipeline_id, "--refresh", selection, "--no-wait").exit_code == 0
    args = ("run", "--pipeline", pipeline.pipeline_id, "--full-refresh-selection", "reso_gold.member", "--no-wait")
    assert mls2(*args).exit_code == 0
    assert [start.body for start in starts(workspace)] == [
        {"full_refresh": True},
        {"full_refresh": False, "refresh_selection": ["qobrix_silver.property", "reso_gold.property"]},
        {"full_refresh": False, "full_refresh_selection": ["reso_gold.member"]},
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--refresh", "qobrix_silver.unicorn"], "unknown datasets: qobrix_silver.unicorn"),
        (["--full-refresh-selection", "reso_gold.nothing"], "unknown datasets: reso_gold.nothing"),
        (["--full-refresh", "--refresh", "reso_gold.property"], "do not combine it with a selection"),
    ],
)
def test_a_bad_selection_is_refused_before_anything_is_sent(
    workspace: FakeWorkspace, args: list[str], message: str
) -> None:
    pipeline = workspace.add_pipeline()
    result = mls2("run", "--pipeline", pipeline.pipeline_id, *args)
    assert result.exit_code == 2 and message in said(result)
    assert workspace.api_requests() == []


def test_a_temporary_view_cannot_be_refreshed_alone(workspace: FakeWorkspace) -> None:
    view = next(d.name for d in load_graph().ordered() if d.kind == "temporary_view")
    result = mls2("run", "--pipeline", workspace.add_pipeline().pipeline_id, "--refresh", view)
    assert result.exit_code == 2 and f"cannot be refreshed alone: {view}" in said(result)
    assert workspace.api_requests() == []


def test_a_failed_update_exits_1_naming_the_update_and_its_first_error(workspace: FakeWorkspace) -> None:
    workspace.script = [
        Step("RUNNING", [flow("qobrix_silver.property", "FAILED")]),
        Step("FAILED", [error("Update failed.", "[UNRESOLVED_COLUMN] `price_eur` cannot be resolved"),
                        error("Second failure.", "not the first")]),
    ]  # fmt: skip
    pipeline = workspace.add_pipeline()
    result = mls2("run", "--pipeline", pipeline.pipeline_id)
    update_id = pipeline.updates[0]["update_id"]
    assert result.exit_code == 1
    assert "qobrix_silver.property: FAILED" in said(result)
    assert f"update {update_id} FAILED: Update failed.: [UNRESOLVED_COLUMN] `price_eur`" in said(result)
    assert "not the first" not in said(result)


def test_a_canceled_update_exits_1(workspace: FakeWorkspace) -> None:
    workspace.script = [Step("RUNNING"), Step("CANCELED")]
    pipeline = workspace.add_pipeline()
    result = mls2("run", "--pipeline", pipeline.pipeline_id)
    assert result.exit_code == 1 and f"update {pipeline.updates[0]['update_id']} CANCELED" in said(result)


def test_a_pipeline_that_does_not_exist_is_named_and_nothing_starts(workspace: FakeWorkspace) -> None:
    missing = "0b7c6a1e-9f3d-4c2b-8a61-5d4e3f2a1b0c"
    result = mls2("run", "--pipeline", missing)
    assert result.exit_code == 2 and f"pipeline '{missing}' does not exist in {workspace.host}" in said(result)
    result = mls2("run", "--pipeline", "mls2 prod")
    assert result.exit_code == 2 and "no pipeline named 'mls2 prod'" in said(result)
    assert "databricks bundle deploy" in said(result)
    assert [start.path for start in starts(workspace)] == [f"/api/2.0/pipelines/{missing}/updates"]


def test_two_pipelines_with_one_name_are_refused_with_their_ids(workspace: FakeWorkspace) -> None:
    first, second = workspace.add_pipeline(), workspace.add_pipeline()
    result = mls2("run", "--no-wait")
    assert result.exit_code == 2
    assert "2 pipelines are named 'mls2_dev'" in said(result)
    assert first.pipeline_id in said(result) and second.pipeline_id in said(result)


def test_a_refused_token_is_reported_as_such(workspace: FakeWorkspace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABRICKS_TOKEN", "dapi-revoked")
    result = mls2("status", "--pipeline", workspace.add_pipeline().pipeline_id)
    assert result.exit_code == 2
    assert f"{workspace.host} refused to read pipeline" in said(result) and "Invalid access token" in said(result)


def test_without_a_workspace_the_settings_to_set_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABRICKS_HOST", "DATABRICKS_TOKEN", "DATABRICKS_CLIENT_ID", "DATABRICKS_CONFIG_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", "/nonexistent/databrickscfg")
    for command in ("run", "status", "events"):
        result = mls2(command)
        assert result.exit_code == 2
        assert "no usable Databricks workspace settings: set DATABRICKS_HOST and DATABRICKS_TOKEN" in said(result)


def test_status_shows_the_pipeline_and_its_latest_updates(workspace: FakeWorkspace) -> None:
    pipeline = workspace.add_pipeline()
    older = workspace.add_update(pipeline, [Step("FAILED")])
    newer = workspace.add_update(pipeline, [Step("COMPLETED")], full_refresh=True)
    result = mls2("status", "--pipeline", pipeline.pipeline_id)
    assert result.exit_code == 0, result.output
    assert f"Pipeline mls2_dev ({pipeline.pipeline_id}) on {workspace.host}: IDLE, health HEALTHY" in said(result)
    lines = result.output.splitlines()
    [newer_line] = [line for line in lines if newer in line]
    [older_line] = [line for line in lines if older in line]
    assert lines.index(newer_line) < lines.index(older_line)
    assert "COMPLETED" in newer_line and "full" in newer_line and "JOB_TASK" in newer_line
    assert "FAILED" in older_line and "full" not in older_line


def test_events_shows_the_latest_updates_flows_and_data_quality(workspace: FakeWorkspace) -> None:
    pipeline = workspace.add_pipeline()
    workspace.add_update(pipeline, [Step("RUNNING", [flow("reso_gold.member", "COMPLETED")]), Step("COMPLETED")])
    latest = workspace.add_update(pipeline, RUN)
    result = mls2("events", "--pipeline", pipeline.pipeline_id)
    assert result.exit_code == 0, result.output
    assert f"Events of update {latest}" in said(result)
    [silver] = [line for line in said(result).splitlines() if "qobrix_silver.property" in line]
    assert "COMPLETED" in silver and "258" in silver and "price_not_negative 2" in silver
    assert "id_present" not in silver, "only failed expectations are listed"
    assert "reso_gold.member" not in said(result), "another update's events are left out"
    [listing] = [r for r in workspace.api_requests() if r.path.endswith("/updates")]
    assert listing.query["max_results"] == "1", "only the latest update is asked for"
    [page] = [r for r in workspace.api_requests() if r.path.endswith("/events")][:1]
    assert page.query["order_by"] == "timestamp asc" and page.query["filter"].startswith("timestamp >= '")


def test_events_follows_pages_and_stops_at_the_limit(workspace: FakeWorkspace) -> None:
    pipeline = workspace.add_pipeline()
    flows = [flow(f"reso_gold.flow_{n:03}", "COMPLETED", metrics={"num_output_rows": n}) for n in range(60)]
    update_id = workspace.add_update(pipeline, [Step("RUNNING", flows), Step("COMPLETED")])
    result = mls2("events", "--pipeline", pipeline.pipeline_id, "--type", "flow_progress")
    assert result.exit_code == 0, result.output
    assert all(f"reso_gold.flow_{n:03}" in said(result) for n in range(60))
    pages = [r for r in workspace.api_requests() if r.path.endswith("/events")]
    assert len(pages) == 3 and "page_token" in pages[1].query
    before = len(workspace.api_requests())
    limited = mls2("events", "--pipeline", pipeline.pipeline_id, "--update", update_id, "--limit", "5")
    assert limited.exit_code == 0 and "reso_gold.flow_003" in limited.output
    assert "reso_gold.flow_004" not in limited.output
    assert [r.path for r in workspace.api_requests()[before:]].count(pages[0].path) == 1, "one page was enough"


def test_events_of_an_older_update_stop_at_its_end(workspace: FakeWorkspace) -> None:
    pipeline = workspace.add_pipeline()
    older = workspace.add_update(
        pipeline, [Step("RUNNING", [flow("reso_gold.member", "COMPLETED")]), Step("COMPLETED")]
    )
    flows = [flow(f"reso_gold.flow_{n:03}", "COMPLETED") for n in range(80)]
    workspace.add_update(pipeline, [Step("RUNNING", flows), Step("COMPLETED")])
    result = mls2("events", "--pipeline", pipeline.pipeline_id, "--update", older)
    assert result.exit_code == 0 and "reso_gold.member" in result.output and "flow_000" not in result.output
    assert len([r for r in workspace.api_requests() if r.path.endswith("/events")]) == 1, "later pages not read"


def test_a_refused_oauth_secret_exits_2_naming_the_sign_in(
    workspace: FakeWorkspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABRICKS_TOKEN")
    monkeypatch.setenv("DATABRICKS_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("DATABRICKS_CLIENT_SECRET", "stolen")
    result = mls2("status", "--pipeline", workspace.add_pipeline().pipeline_id)
    assert result.exit_code == 2 and f"could not sign in to {workspace.host}" in said(result)


def test_events_of_an_unknown_update_name_it(workspace: FakeWorkspace) -> None:
    pipeline = workspace.add_pipeline()
    result = mls2("events", "--pipeline", pipeline.pipeline_id, "--update", "no-such-update")
    assert result.exit_code == 2 and f"pipeline {pipeline.pipeline_id} has no update no-such-update" in said(result)


def test_events_of_a_pipeline_that_never_ran(workspace: FakeWorkspace) -> None:
    result = mls2("events", "--pipeline", workspace.add_pipeline().pipeline_id)
    assert result.exit_code == 2 and "has not run an update yet" in said(result)


def test_the_databricks_event_table_is_the_embedded_one(
    workspace: FakeWorkspace, published_gold: PublishedGold, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real embedded update's events served as Databricks' REST API gives them print the same table."""
    from pipelines._engine.events import read_events

    lakehouse = published_gold.settings.paths.lakehouse
    rows = read_events(lakehouse, limit=200)
    pipeline = workspace.add_pipeline()
    update_id = rows[0]["update_id"]
    created = int(rows[0]["timestamp"].timestamp() * 1000)
    pipeline.updates.insert(0, {"update_id": update_id, "state": "COMPLETED", "creation_time": created})
    workspace.events = [
        {"id": str(n), "event_type": row["event_type"], "level": "INFO",
         "origin": {"pipeline_id": pipeline.pipeline_id, "update_id": update_id, "dataset_name": row["dataset"]},
         "timestamp": row["timestamp"].isoformat(timespec="microseconds"),
         "details": orjson.loads(row["details"])}
        for n, row in enumerate(rows)
    ]  # fmt: skip
    monkeypatch.setenv("MLS2_DATA_DIR", str(published_gold.settings.mls2_data_dir))
    embedded = runner.invoke(app, ["pipeline", "events"])
    databricks = mls2("events", "--pipeline", pipeline.pipeline_id)
    assert embedded.exit_code == databricks.exit_code == 0
    assert "qobrix_bronze.properties" in embedded.stdout
    assert databricks.stdout == embedded.stdout
