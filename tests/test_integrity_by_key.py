"""Integrity by key: after an update, the suite checks only the rows of the keys the tables' commits
changed since the run before, and reaches the verdicts a whole run reaches. A sandbox with defects
is synced, updated and checked whole; then churn of every kind is synced and updated."""

import shutil
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from deltalake import DeltaTable, write_deltalake
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from conf.cli import app, serving_app
from conf.settings import Settings, load_settings
from expectations.by_key import KeyScope, Restriction, previous_run
from expectations.cli import integrity_after_update
from expectations.engines import EmbeddedEngine
from expectations.integrity import IntegrityRun, run_integrity
from expectations.suite_files import SuiteError, load_suite, suites
from ingestion.sandbox import SandboxServer, SandboxWorld
from ingestion.sandbox.faults import FaultConfig
from ingestion.sandbox.world import Changes
from pipelines import run_update
from pipelines.embedded import duckdb_query
from pipelines.ui.operators import OperatorRegistry
from tests.conftest import delta_rows, make_sync
from tests.test_pipeline_ui import PASSWORD, sign_in

CHURN = {
    "properties": Changes(creates=4, updates=10, media_updates=5, trashes=15, restores=1, deletes=5),
    "contacts": Changes(creates=2, updates=3, trashes=1),
    "agents": Changes(updates=2),
    "users": Changes(updates=2),
    "property-viewings": Changes(creates=4, updates=3),
    "projects": Changes(updates=1, media_updates=1),
}


def keyed_datasets() -> list[tuple[str, object]]:
    return [(suite.name, dataset) for suite in suites() for dataset in suite.datasets.values() if dataset.by_key]


def dataset_rows(settings: Settings) -> dict[str, pa.Table]:
    """Every dataset checked by key, computed whole, as DuckDB gives it."""
    with EmbeddedEngine(settings, "rows") as engine:
        return {
            f"{suite}.{dataset.name}": engine.con.sql(duckdb_query(dataset.sql, origin=dataset.name)).to_arrow_table()
            for suite, dataset in keyed_datasets()
        }


@pytest.fixture(scope="module")
def churned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, IntegrityRun, dict[str, pa.Table]]:
    """The data directory after the churn's update, the whole run before it, and every keyed
    dataset's rows as that run saw them."""
    settings = load_settings(mls2_data_dir=tmp_path_factory.mktemp("by-key") / "data")
    world = SandboxWorld(seed=5, properties=60)
    with SandboxServer(world, faults=FaultConfig(defect_rate=0.05)) as server:
        sync = make_sync(settings, server)
        sync()
        run_update(settings.paths)
        base = run_integrity(settings, build_docs=False)
        before = dataset_rows(settings)
        world.advance(changes=CHURN)
        sync()
        run_update(settings.paths)
    return settings, base, before


@pytest.fixture
def copy(churned: tuple[Settings, IntegrityRun, dict], tmp_path: Path) -> Settings:
    shutil.copytree(churned[0].paths.root, tmp_path / "data")
    return load_settings(mls2_data_dir=tmp_path / "data")


def verdicts(run: IntegrityRun) -> dict[tuple[str, str], tuple]:
    """Each expectation's verdict, count and (when all fit in the sample) the records it names."""
    return {
        (r.dataset, r.expectation): (
            r.success,
            r.unexpected_count,
            frozenset(r.unexpected_sample) if r.unexpected_count < 20 else None,
            r.message,
        )
        for r in run.results
    }


def check_declarations(settings: Settings, base: IntegrityRun, before: dict[str, pa.Table]) -> set[str]:
    """For every dataset checked by key: each row that differs from `before` (added, changed or gone)
    has a key the run by key checks, and the dataset computed from the tables read by key has the
    rows the whole dataset has for those keys. Returns the datasets with rows that differ."""
    changed_datasets = set()
    with EmbeddedEngine(settings, "test") as engine:
        con = engine.con
        # As if the run before had passed every dataset: each declaration is checked, none skipped.
        previous = replace(previous_run(con, "embedded"), failed=frozenset())
        assert previous.run_id == base.run_id
        scope = KeyScope(con, engine.tables, previous)
        for suite, declared in keyed_datasets():
            name = f"{suite}.{declared.name}"
            # The tables a dataset reads whole have their own test.
            dataset = replace(declared, whole_if_changed=(), whole_if_removed=())
            restriction = scope.restriction(suite, dataset)
            assert isinstance(restriction, Restriction), f"{name} checked whole: {restriction}"
            con.register("rows_before", before[name])
            now = duckdb_query(dataset.sql, origin=name)
            changed = (
                f"(SELECT * FROM ({now}) EXCEPT ALL SELECT * FROM rows_before) "
                f"UNION ALL (SELECT * FROM rows_before EXCEPT ALL SELECT * FROM ({now}))"
            )
            if con.sql(f"SELECT count(*) FROM ({changed})").fetchall()[0][0]:
                changed_datasets.add(name)
            missed = con.sql(f"SELECT * FROM ({changed}) WHERE NOT ({restriction.where})").fetchall()
            assert not missed, f"{name}: rows changed by the update whose keys a run by key does not check"
            checked = f"{restriction.query(dataset.sql, origin=name)}"
            expected = f"SELECT * FROM ({now}) WHERE {restriction.where}"
            difference = f"({checked} EXCEPT ALL {expected}) UNION ALL ({expected} EXCEPT ALL {checked})"
            assert con.sql(f"SELECT count(*) FROM ({difference})").fetchall() == [(0,)], name
            con.unregister("rows_before")
    return changed_datasets


def test_every_row_the_update_changed_is_among_the_keys_checked_and_read_by_key_alike(churned) -> None:
    changed_datasets = check_declarations(*churned)
    # The churn reaches records through the records they name, not only their own.
    assert {
        "reconciliation.landed_listings",
        "reconciliation.media_has_listing",
        "reso_conformance.media_listing",
        "reso_conformance.showing_listing",
        "reso_conformance.served_lookup_values",
        "reso_conformance.listing_agent",
    } <= changed_datasets, changed_datasets


def test_tables_rewritten_on_one_side_of_a_join_keep_the_declarations_true(copy: Settings) -> None:
    """Silver listings and gold members written anew (every row replaced) while what names them is
    not: the keys changed are all on one side."""
    base = run_integrity(copy, build_docs=False)
    before = dataset_rows(copy)
    listings = str(copy.paths.lakehouse / "qobrix_silver" / "property")
    write_deltalake(listings, delta_rows(DeltaTable(listings)), mode="overwrite")
    members = str(copy.paths.lakehouse / "reso_gold" / "member")
    rows = delta_rows(DeltaTable(members))
    write_deltalake(members, rows.slice(1), mode="overwrite")
    assert "reso_conformance.listing_agent" in check_declarations(copy, base, before)


def test_a_run_by_key_reaches_the_verdicts_of_a_whole_run_on_fewer_rows(copy: Settings) -> None:
    by_key = run_integrity(copy, build_docs=False, by_key=True)
    whole = run_integrity(copy, build_docs=False)
    assert by_key.scope == "by key" and whole.scope == "whole"
    assert verdicts(by_key) == verdicts(whole)
    keyed = {r.dataset for r in by_key.results if r.scope == "by key"}
    assert {"property", "media", "landed_listings", "media_listing", "showing_listing"} <= keyed, keyed
    results = delta_rows(DeltaTable(str(copy.paths.lakehouse / "mls2_system" / "integrity_results")))
    scopes = {row["run_id"]: row["scope"] for row in results.to_pylist()}
    assert scopes[by_key.run_id] == "by key" and scopes[whole.run_id] == "whole"
    runs = delta_rows(DeltaTable(str(copy.paths.lakehouse / "mls2_system" / "integrity_runs"))).to_pylist()
    runs.sort(key=lambda row: row["run_at"])
    assert [(r["run_id"], r["scope"], r["base_run_id"]) for r in runs[-2:]] == [
        (by_key.run_id, "by key", runs[-3]["run_id"]),
        (whole.run_id, "whole", None),
    ]


def append_bronze_delete(settings: Settings) -> str:
    """A delete of a served listing landed in bronze and not applied (a lost update): the listing
    is served though Qobrix deleted it. Its Qobrix id."""
    path = str(settings.paths.lakehouse / "reso_gold" / "property")
    listing = min(delta_rows(DeltaTable(path)).column("OriginatingSystemKey").to_pylist())
    bronze = str(settings.paths.lakehouse / "qobrix_bronze" / "properties")
    table = delta_rows(DeltaTable(bronze))
    row = next(r for r in table.to_pylist() if r["record_key"] == listing)
    changed = row | {"operation": "delete", "record_modified": row["record_modified"].replace(year=2030)}
    write_deltalake(bronze, pa.Table.from_pylist([changed], table.schema), mode="append")
    return listing


def test_a_fault_in_a_changed_record_is_found_by_key_and_its_dataset_checked_whole_until_it_passes(
    copy: Settings,
) -> None:
    run_integrity(copy, build_docs=False)
    listing = append_bronze_delete(copy)
    found = run_integrity(copy, build_docs=False, by_key=True)
    [failure] = [r for r in found.critical_failures if r.dataset == "landed_listings"]
    assert failure.scope == "by key" and failure.changed_keys == 1 and failure.unexpected_sample == (listing,)
    assert {(r.scope, r.changed_keys) for r in found.results if r.dataset in ("property", "media")} == {("by key", 0)}
    again = run_integrity(copy, build_docs=False, by_key=True)
    [failure] = [r for r in again.critical_failures if r.dataset == "landed_listings"]
    assert failure.scope == "whole" and failure.unexpected_sample == (listing,)
    assert again.whole_datasets["reconciliation.landed_listings"] == f"it failed in run {found.run_id}"


def test_a_record_removed_fails_the_records_naming_it_by_key_though_they_did_not_change(copy: Settings) -> None:
    run_integrity(copy, build_docs=False)
    listings = delta_rows(DeltaTable(str(copy.paths.lakehouse / "reso_gold" / "property"))).to_pylist()
    agent = min(row["ListAgentKey"] for row in listings if row["ListAgentKey"])
    members = str(copy.paths.lakehouse / "reso_gold" / "member")
    rows = delta_rows(DeltaTable(members))
    write_deltalake(members, rows.filter(pc.not_equal(rows["MemberKey"], agent)), mode="overwrite")
    by_key = run_integrity(copy, build_docs=False, by_key=True)
    [failure] = [r for r in by_key.results if r.dataset == "listing_agent" and not r.success]
    assert failure.scope == "by key"
    assert set(failure.unexpected_sample) == {row["ListingKey"] for row in listings if row["ListAgentKey"] == agent}
    assert verdicts(by_key) == verdicts(run_integrity(copy, build_docs=False))


def test_a_run_by_key_goes_whole_without_a_run_before_or_a_recent_whole_run(
    copy: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.rmtree(copy.paths.lakehouse / "mls2_system" / "integrity_runs")
    first = run_integrity(copy, build_docs=False, by_key=True)
    assert first.scope == "whole" and first.base_run_id is None
    assert {r.scope for r in first.results} == {"whole"}
    assert run_integrity(copy, build_docs=False, by_key=True).scope == "by key"
    stale = load_settings(mls2_data_dir=copy.paths.root, mls2_integrity_whole_every_hours=0)
    assert run_integrity(stale, build_docs=False, by_key=True).scope == "whole"
    monkeypatch.setattr("expectations.integrity.suites_digest", lambda _: "other suites")
    assert run_integrity(copy, build_docs=False, by_key=True).scope == "whole"


def test_a_dataset_goes_whole_when_a_table_it_reads_whole_changes_or_loses_values_or_is_created_anew(
    copy: Settings,
) -> None:
    run_integrity(copy, build_docs=False)
    types = str(copy.paths.lakehouse / "qobrix_silver" / "property_type")
    write_deltalake(types, delta_rows(DeltaTable(types)), mode="overwrite")
    lookup = str(copy.paths.lakehouse / "reso_gold" / "lookup")
    values = delta_rows(DeltaTable(lookup))
    write_deltalake(lookup, values.slice(1), mode="overwrite")
    run = run_integrity(copy, build_docs=False, by_key=True)
    assert run.scope == "by key"
    assert run.whole_datasets["reconciliation.values_as_mapped"] == (
        "qobrix_silver.property_type, which it reads whole, changed"
    )
    assert run.whole_datasets["reso_conformance.served_lookup_values"] == (
        "reso_gold.lookup, which it reads whole, lost values of LookupName, LookupValue"
    )
    office = copy.paths.lakehouse / "reso_gold" / "office"
    rows = delta_rows(DeltaTable(str(office)))
    shutil.rmtree(office)
    write_deltalake(str(office), rows)
    run = run_integrity(copy, build_docs=False, by_key=True)
    for dataset in ("office", "listing_office", "member_office", "served_lookup_values"):
        assert "reso_gold.office's changes since run" in run.whole_datasets[f"reso_conformance.{dataset}"]
    assert {r.scope for r in run.results if r.dataset in ("property", "values_as_mapped")} == {"by key"}


def test_the_integrity_suite_after_an_update_goes_by_key_and_the_quality_page_says_so(copy: Settings) -> None:
    assert integrity_after_update(copy)
    results = delta_rows(DeltaTable(str(copy.paths.lakehouse / "mls2_system" / "integrity_results"))).to_pylist()
    latest = max(results, key=lambda row: row["run_at"])["run_id"]
    assert {row["scope"] for row in results if row["run_id"] == latest} == {"whole", "by key"}
    OperatorRegistry(copy.paths.operators).add("ops", PASSWORD)
    with TestClient(serving_app(copy), base_url="http://testserver") as client:
        sign_in(client)
        page = client.get("/ui/quality").text
    keyed = {row["changed_keys"] for row in results if row["run_id"] == latest and row["dataset"] == "property"}
    assert f"by key: {keyed.pop()} changed" in page and "checked on the records changed since the run before" in page


def test_runs_by_key_are_refused_on_spark(copy: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLS2_DATA_DIR", str(copy.paths.root))
    result = CliRunner().invoke(app, ["integrity", "run", "--engine", "spark", "--by-key"])
    assert result.exit_code == 2 and "--by-key is the embedded engine's" in result.output


@pytest.mark.parametrize(
    ("dataset", "expectation", "error"),
    [
        ("{sql: SELECT 1 AS k, by_key: {k: reso_gold.property}}", "", "maps tables (schema.table)"),
        ("{sql: SELECT 1 AS k, by_key: {k: {property: k}}}", "", "is not `schema.table: expression`"),
        ("{sql: SELECT 1 AS k, reads_by_key: true}", "", "need `by_key`"),
        ("{sql: SELECT 1 AS k, by_key: {k: {a.b: k}}, whole_if_changed: a.c}", "", "lists tables as schema.table"),
        ("{sql: SELECT 1 AS k, by_key: {k: {a.b: k}}, reads_by_key: yes please}", "", "is true or false"),
        (
            "{sql: 'SELECT 1 AS k, 2 AS v', by_key: {k: {a.b: k}}}",
            "type: expect_column_mean_to_be_between, kwargs: {column: v, min_value: 0}",
            "expect_column_mean_to_be_between is not",
        ),
        (
            "{sql: 'SELECT 1 AS k, 2 AS v', by_key: {k: {a.b: k}}}",
            "type: expect_column_values_to_be_unique, kwargs: {column: v}",
            "or the uniqueness of k); expect_column_values_to_be_unique is not",
        ),
        (
            "{sql: 'SELECT 1 AS k, 2 AS v', by_key: {k: {a.b: k}}}",
            "type: expect_column_values_to_not_be_null, kwargs: {column: v, mostly: 0.9}",
            "without `mostly`",
        ),
    ],
)
def test_a_suite_declaring_keys_it_cannot_be_checked_by_is_refused(
    tmp_path: Path, dataset: str, expectation: str, error: str
) -> None:
    expectation = expectation or "type: expect_column_values_to_not_be_null, kwargs: {column: k}"
    path = tmp_path / "keyed.yaml"
    path.write_text(f"suite: keyed\ndatasets:\n  d: {dataset}\nexpectations:\n  - {{dataset: d, {expectation}}}\n")
    with pytest.raises(SuiteError, match="suite keyed") as raised:
        load_suite(path)
    assert error in str(raised.value)
