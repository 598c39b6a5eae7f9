"""The expectation dashboard (conf/databricks/dashboard.yml): the resource loads into its typed class,
every widget reads columns its dataset returns, and every dataset query, Databricks SQL, gives over
a real embedded event log (two updates) the numbers an independent reading of that log gives.

Databricks SQL constructs the queries rely on, and how sqlglot renders them for DuckDB:
- `get_json_object(details, '$.a.b')` for a value in `details` (DuckDB `json_extract_string`), not
  `details:a.b`: sqlglot renders that as DuckDB's `->`, which yields JSON (`"COMPLETED"`, quoted),
  where Databricks yields the string.
- `explode(from_json(get_json_object(details, '$...expectations'), 'array<struct<...>>')) AS e`, then
  `e.name`: sqlglot's own DuckDB output passes the Spark DDL schema to DuckDB's `from_json`, which
  wants a JSON structure and fails; the engine's `EmbeddedDuckDB` dialect (pipelines/_engine/sql.py,
  a sqlglot DuckDB subclass) renders it as `json_transform`, and `explode` as `UNNEST`.
- `max_by` (DuckDB `arg_max`), `unix_micros` (`epoch_us`), `timestampdiff(MINUTE, ...)`
  (`date_diff`), `nullif`, `coalesce`, `CAST(... AS BIGINT)`.
Queries name the table bare (`pipeline_event_log`): the dashboard sets the catalog and schema, as
`USE mls2_system` does here.
"""

import json
import shutil
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pytest
import sqlglot
import yaml
from databricks.bundles.dashboards import Dashboard
from sqlglot import exp

from conf.entities import entities
from conf.settings import load_settings
from ingestion.landing import LandingWriter
from pipelines import run_update
from pipelines._engine.events import EVENT_LOG
from pipelines._engine.lakehouse import Lakehouse
from pipelines._engine.sql import EmbeddedDuckDB
from tests.conftest import PublishedGold, delta_rows
from tests.landing_checks import landed

BUNDLE = Path(__file__).resolve().parent.parent / "conf" / "databricks"
GRID_COLUMNS = 6


def resource(file: str, kind: str, key: str) -> dict[str, Any]:
    return yaml.safe_load((BUNDLE / file).read_text())["resources"][kind][key]


def dashboard() -> dict[str, Any]:
    return json.loads((BUNDLE / resource("dashboard.yml", "dashboards", "mls2_expectations")["file_path"]).read_text())


def datasets() -> dict[str, str]:
    """Each dataset's Databricks SQL, by dataset name."""
    return {dataset["name"]: "".join(dataset["queryLines"]) for dataset in dashboard()["datasets"]}


def columns(sql: str) -> list[str]:
    return sqlglot.parse_one(sql, dialect="databricks").named_selects


def encoded_fields(encodings: Any) -> list[tuple[str, str | None]]:
    """Every (fieldName, queryName) an encoding names, however deep."""
    if isinstance(encodings, list):
        return [found for item in encodings for found in encoded_fields(item)]
    if not isinstance(encodings, dict):
        return []
    here = [(encodings["fieldName"], encodings.get("queryName"))] if "fieldName" in encodings else []
    return here + [found for value in encodings.values() for found in encoded_fields(value)]


@pytest.fixture(scope="module")
def events(published_gold: PublishedGold, tmp_path_factory: pytest.TempPathFactory) -> pa.Table:
    """The event log of the published run, then of a second update on a copy of it that takes one
    listing with a negative price (dropped by `prices_not_negative`): two updates with different
    numbers, dropped rows among them, so a query that mixes updates or reads the wrong field shows."""
    settings = load_settings(mls2_data_dir=tmp_path_factory.mktemp("dashboard") / "data")
    shutil.copytree(published_gold.settings.mls2_data_dir, settings.mls2_data_dir)
    listing = landed(settings)["properties"][0]["record"]
    broken = {**listing, "list_selling_price_amount": -1, "modified": datetime.now(UTC).isoformat()}
    LandingWriter(settings.landing_root, "dashboard", started=datetime.now(UTC)).write_page(
        entities()["properties"], [broken]
    )
    run_update(settings.paths)
    return delta_rows(Lakehouse(settings.paths.lakehouse).table(EVENT_LOG))


@pytest.fixture(scope="module")
def event_rows(events: pa.Table) -> list[dict[str, Any]]:
    """The events as Python dicts, `details` parsed: the independent reading the queries must agree with."""
    return [{**row, "details": orjson.loads(row["details"])} for row in events.to_pylist()]


@pytest.fixture(scope="module")
def warehouse(events: pa.Table) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.register("embedded_event_log", events)
    con.execute("CREATE SCHEMA mls2_system")
    con.execute("CREATE TABLE mls2_system.pipeline_event_log AS SELECT * FROM embedded_event_log")
    con.execute("USE mls2_system")
    return con


def run(con: duckdb.DuckDBPyConnection, dataset: str) -> list[dict[str, Any]]:
    """A dataset's query, Databricks SQL rendered for DuckDB by sqlglot, as rows."""
    sql = sqlglot.parse_one(datasets()[dataset], dialect="databricks").sql(dialect=EmbeddedDuckDB)
    cursor = con.execute(sql)
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def test_the_dashboard_resource_loads_and_reads_the_pipelines_event_log() -> None:
    spec = resource("dashboard.yml", "dashboards", "mls2_expectations")
    Dashboard.from_dict(spec)
    assert (BUNDLE / spec["file_path"]).is_file()
    assert spec["warehouse_id"] == "${var.warehouse_id}"
    event_log = resource("pipeline.yml", "pipelines", "mls2")["event_log"]
    assert (spec["dataset_catalog"], spec["dataset_schema"]) == (event_log["catalog"], event_log["schema"])
    assert event_log["schema"] == "${resources.schemas.mls2_system.name}"
    for sql in datasets().values():
        read = {
            table.sql(dialect="databricks")
            for table in sqlglot.parse_one(sql, dialect="databricks").find_all(exp.Table)
        }
        assert read == {event_log["name"]}, sql


def test_every_widget_reads_columns_its_dataset_returns() -> None:
    returned = {name: set(columns(sql)) for name, sql in datasets().items()}
    layout = [item for page in dashboard()["pages"] for item in page["layout"]]
    assert len(layout) == len({item["widget"]["name"] for item in layout})
    for item in layout:
        widget, position = item["widget"], item["position"]
        assert position["x"] + position["width"] <= GRID_COLUMNS, widget["name"]
        if "queries" not in widget:
            assert "multilineTextboxSpec" in widget, widget["name"]
            continue
        spec = widget["spec"]
        assert {"version", "widgetType", "encodings"} <= set(spec), widget["name"]
        fields: dict[str, set[str]] = {}
        for query in widget["queries"]:
            dataset = query["query"]["datasetName"]
            assert dataset in returned, (widget["name"], dataset)
            for field in query["query"]["fields"]:
                parsed = sqlglot.parse_one(field["expression"], dialect="databricks")
                read = {column.name for column in parsed.find_all(exp.Column)}
                assert read and read <= returned[dataset], (widget["name"], field)
            fields[query["name"]] = {field["name"] for field in query["query"]["fields"]}
        encoded = encoded_fields(spec["encodings"])
        assert encoded, widget["name"]
        for field_name, query_name in encoded:
            if query_name is None:
                [query_name] = fields
            assert field_name in fields[query_name], (widget["name"], field_name)


@pytest.mark.parametrize("dataset", list(datasets()))
def test_every_query_is_databricks_sql_that_runs_on_duckdb(warehouse: duckdb.DuckDBPyConnection, dataset: str) -> None:
    sql = sqlglot.parse_one(datasets()[dataset], dialect="databricks").sql(dialect=EmbeddedDuckDB)
    cursor = warehouse.execute(sql)
    assert [column[0] for column in cursor.description] == columns(datasets()[dataset])
    assert cursor.fetchall()


def expected_expectations(event_rows: list[dict[str, Any]]) -> dict[tuple[str, str, str], tuple[int, int]]:
    """(update, dataset, expectation) -> (passed, failed), summed over the update's flow_progress events."""
    counts: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0])
    for row in event_rows:
        if row["event_type"] != "flow_progress":
            continue
        for check in row["details"]["flow_progress"].get("data_quality", {}).get("expectations", []):
            key = (row["origin"]["update_id"], check["dataset"], check["name"])
            counts[key][0] += check["passed_records"]
            counts[key][1] += check["failed_records"]
    return {key: (passed, failed) for key, (passed, failed) in counts.items()}


def test_passed_and_failed_per_expectation_are_the_event_logs(
    warehouse: duckdb.DuckDBPyConnection, event_rows: list[dict[str, Any]]
) -> None:
    rows = run(warehouse, "expectations")
    found = {(r["update_id"], r["dataset"], r["expectation"]): (r["passed_records"], r["failed_records"]) for r in rows}
    assert found == expected_expectations(event_rows)
    assert len({update for update, _, _ in found}) == 2
    for row in rows:
        assert row["failure_rate"] == pytest.approx(
            row["failed_records"] / (row["passed_records"] + row["failed_records"])
        )


def test_the_run_fails_and_drops_rows_so_a_query_reading_the_wrong_field_shows(
    event_rows: list[dict[str, Any]],
) -> None:
    """Failed counts that are not the passed ones, and dropped rows: a query summing passed records as
    failed (or the reverse), or another count as dropped, fails the comparisons here."""
    counts = expected_expectations(event_rows)
    assert any(passed != failed for passed, failed in counts.values() if failed)
    progress = [row["details"]["flow_progress"] for row in event_rows if row["event_type"] == "flow_progress"]
    assert any(p.get("data_quality", {}).get("dropped_records") for p in progress)


def test_rows_and_durations_per_flow_are_the_event_logs(
    warehouse: duckdb.DuckDBPyConnection, event_rows: list[dict[str, Any]]
) -> None:
    flows: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in event_rows:
        if row["event_type"] == "flow_progress":
            flows[(row["origin"]["update_id"], row["origin"]["dataset_name"])].append(row)
    found = {(r["update_id"], r["dataset"]): r for r in run(warehouse, "flows")}
    assert set(found) == set(flows)
    for key, progress in flows.items():
        progress.sort(key=lambda row: row["timestamp"])
        report = [row["details"]["flow_progress"] for row in progress]
        started = min(
            row["timestamp"] for row, p in zip(progress, report, strict=True) if p["status"] in {"STARTING", "RUNNING"}
        )
        completed = [row["timestamp"] for row, p in zip(progress, report, strict=True) if p["status"] == "COMPLETED"]
        row = found[key]
        assert row["status"] == report[-1]["status"], key
        assert row["output_rows"] == sum(p.get("metrics", {}).get("num_output_rows", 0) for p in report), key
        assert row["dropped_rows"] == sum(p.get("data_quality", {}).get("dropped_records", 0) for p in report), key
        assert row["started_at"] == started, key
        if completed:
            assert row["duration_seconds"] == pytest.approx((max(completed) - started).total_seconds(), abs=1e-6)
        else:
            assert row["duration_seconds"] is None, key
    assert any(row["output_rows"] for row in found.values())
    assert any(row["duration_seconds"] for row in found.values())


def test_updates_and_freshness_are_the_event_logs(
    warehouse: duckdb.DuckDBPyConnection, event_rows: list[dict[str, Any]]
) -> None:
    states: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    for row in event_rows:
        if row["event_type"] == "update_progress":
            states[row["origin"]["update_id"]].append((row["timestamp"], row["details"]["update_progress"]["state"]))
    updates = {row["update_id"]: row for row in run(warehouse, "updates")}
    assert set(updates) == set(states) and len(states) == 2
    for update, progress in states.items():
        progress.sort()
        assert updates[update]["state"] == progress[-1][1] == "COMPLETED"
        assert (updates[update]["started_at"], updates[update]["ended_at"]) == (progress[0][0], progress[-1][0])
    [freshness] = run(warehouse, "freshness")
    completed_at, last = max((progress[-1][0], update) for update, progress in states.items())
    assert (freshness["last_completed_update_id"], freshness["last_completed_at"]) == (last, completed_at)
    assert freshness["minutes_since_last_completed"] >= 0
