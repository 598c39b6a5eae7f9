"""Integrity by key: after an update, the suite checks only the rows of the keys the tables' commits
changed since the run before, and reaches the verdicts a whole run reaches. A sandbox with defects
is synced, updated and checked whole; then churn of every kind is synced and updated."""

import shutil
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from deltalake import DeltaTable, write_deltalake
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from conf.cli import app, serving_app
from conf.settings import Settings, load_settings
from expectations.by_key import KeyScope, Restriction, previous_run, suites_digest
from expectations.cli import integrity_after_update
from expectations.engines import RESULT_SCHEMA, EmbeddedEngine
from expectations.integrity import IntegrityRun, run_integrity
from expectations.suite_files import KeyedBy, SuiteError, load_suite, suites
from ingestion.sandbox import SandboxServer, SandboxWorld
from ingestion.sandbox.faults import FaultConfig
from ingestion.sandbox.world import Changes
from pipelines import run_update
from pipelines.embedded import duckdb_query
from pipelines.ui.operators import OperatorRegistry
from pipelines.ui.quality import integrity_latest
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
        scope = KeyScope(con, engine.tables, engine.versions, previous)
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
            restricted = {table for table, _ in dataset.reads_by_key if table in engine.tables}
            assert set(restriction.relations) == restricted, f"{name} reads by key {set(restriction.relations)}"
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


def without_a_listing_agent(settings: Settings) -> tuple[pa.Table, list[str]]:
    """Gold members less the first agent a listing names, and the listings naming that agent."""
    listings = delta_rows(DeltaTable(str(settings.paths.lakehouse / "reso_gold" / "property"))).to_pylist()
    agent = min(row["ListAgentKey"] for row in listings if row["ListAgentKey"])
    rows = delta_rows(DeltaTable(str(settings.paths.lakehouse / "reso_gold" / "member")))
    return rows.filter(pc.not_equal(rows["MemberKey"], agent)), [
        row["ListingKey"] for row in listings if row["ListAgentKey"] == agent
    ]


def test_tables_rewritten_on_one_side_of_a_join_keep_the_declarations_true(copy: Settings) -> None:
    """Silver listings and gold members written anew (every row replaced) while what names them is
    not: the keys changed are all on one side."""
    base = run_integrity(copy, build_docs=False)
    before = dataset_rows(copy)
    listings = str(copy.paths.lakehouse / "qobrix_silver" / "property")
    write_deltalake(listings, delta_rows(DeltaTable(listings)), mode="overwrite")
    members = str(copy.paths.lakehouse / "reso_gold" / "member")
    write_deltalake(members, without_a_listing_agent(copy)[0], mode="overwrite")
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


def test_a_run_by_key_leaves_out_the_rows_no_commit_changed(copy: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    listing = append_bronze_delete(copy)
    whole = run_integrity(copy, build_docs=False)
    assert [r.unexpected_sample for r in whole.critical_failures if r.dataset == "landed_listings"] == [(listing,)]
    # As if that run had passed it: the listing, which nothing changed since, is not looked at again.
    monkeypatch.setattr(
        "expectations.integrity.previous_run",
        lambda con, engine: replace(previous_run(con, engine), failed=frozenset()),
    )
    by_key = run_integrity(copy, build_docs=False, by_key=True)
    landed = {(r.scope, r.changed_keys, r.success) for r in by_key.results if r.dataset == "landed_listings"}
    assert landed == {("by key", 0, True)}


def test_a_record_removed_fails_the_records_naming_it_by_key_though_they_did_not_change(copy: Settings) -> None:
    run_integrity(copy, build_docs=False)
    remaining, naming = without_a_listing_agent(copy)
    write_deltalake(str(copy.paths.lakehouse / "reso_gold" / "member"), remaining, mode="overwrite")
    by_key = run_integrity(copy, build_docs=False, by_key=True)
    [failure] = [r for r in by_key.results if r.dataset == "listing_agent" and not r.success]
    assert failure.scope == "by key" and set(failure.unexpected_sample) == set(naming)
    assert verdicts(by_key) == verdicts(run_integrity(copy, build_docs=False))


def test_a_run_by_key_goes_whole_without_a_run_before_or_a_recent_whole_run(
    copy: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.rmtree(copy.paths.lakehouse / "mls2_system" / "integrity_runs")
    first = run_integrity(copy, build_docs=False, by_key=True)
    assert (first.scope, first.base_run_id, first.why_whole) == ("whole", None, "no earlier run on this lakehouse")
    assert {r.scope for r in first.results} == {"whole"}
    second = run_integrity(copy, build_docs=False, by_key=True)
    assert (second.scope, second.base_run_id, second.why_whole) == ("by key", first.run_id, None)
    stale = load_settings(mls2_data_dir=copy.paths.root, mls2_integrity_whole_every_hours=0)
    assert run_integrity(stale, build_docs=False, by_key=True).why_whole == "no whole run in the last 0 hours"
    monkeypatch.setattr("expectations.integrity.suites_digest", lambda _: "other suites")
    changed = run_integrity(copy, build_docs=False, by_key=True)
    assert changed.scope == "whole" and changed.why_whole.startswith("the suites or this product's version changed")
    runs = delta_rows(DeltaTable(str(copy.paths.lakehouse / "mls2_system" / "integrity_runs"))).to_pylist()
    assert {row["run_id"]: row["why_whole"] for row in runs}[changed.run_id] == changed.why_whole


def test_a_dataset_goes_whole_when_a_table_it_reads_whole_changes_or_loses_values_or_is_created_anew(
    copy: Settings,
) -> None:
    run_integrity(copy, build_docs=False)
    types = str(copy.paths.lakehouse / "qobrix_silver" / "property_type")
    write_deltalake(types, delta_rows(DeltaTable(types)), mode="overwrite")
    lookup = str(copy.paths.lakehouse / "reso_gold" / "lookup")
    values = delta_rows(DeltaTable(lookup))
    write_deltalake(lookup, values.slice(1), mode="overwrite")
    run = first = run_integrity(copy, build_docs=False, by_key=True)
    before = run.run_id
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
    contacts = str(copy.paths.lakehouse / "reso_gold" / "contacts")
    widened = delta_rows(DeltaTable(contacts))
    widened = widened.append_column("X_Note", pa.array([None] * widened.num_rows, pa.string()))
    # The same files' rows, a column more: no row of them is in the log as changed.
    write_deltalake(contacts, widened.slice(0, 0), mode="append", schema_mode="merge")
    run = run_integrity(copy, build_docs=False, by_key=True)
    assert run.whole_datasets["reso_conformance.office"] == f"reso_gold.office was created anew since run {before}"
    assert (
        run.whole_datasets["reso_conformance.contacts"] == f"reso_gold.contacts changed its schema since run {before}"
    )
    failed = {r.dataset for r in first.results if not r.success}  # warnings the sandbox's defects break
    for dataset, table in [("listing_office", "office"), ("member_office", "office"), ("contact_owner", "contacts")]:
        reason = run.whole_datasets[f"reso_conformance.{dataset}"]
        assert reason.startswith("it failed in run" if dataset in failed else f"reso_gold.{table} "), reason
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


def test_a_dataset_reads_by_key_the_tables_it_maps_with_their_key_columns(tmp_path: Path) -> None:
    path = tmp_path / "keyed.yaml"
    dataset = (
        "{sql: 'SELECT m.k, m.l, s.id IS NOT NULL AS live FROM a.m m LEFT JOIN a.s s ON s.id = m.l', "
        "by_key: {k: {a.m: k}, l: {a.s: id}}, reads_by_key: {a.m: {k: k, l: l}}}"
    )
    path.write_text(
        f"suite: keyed\ndatasets:\n  d: {dataset}\n"
        "expectations:\n  - {dataset: d, type: expect_column_values_to_not_be_null, kwargs: {column: k}}\n"
    )
    assert load_suite(path).datasets["d"].reads_by_key == (("a.m", (("k", "k"), ("l", "l"))),)


KEYED = "{sql: 'SELECT k, v FROM a.b', by_key: {k: {a.b: k}}}"


@pytest.mark.parametrize(
    ("dataset", "expectation", "error"),
    [
        ("{sql: SELECT k FROM a.b, by_key: {k: a.b}}", "", "maps tables (schema.table)"),
        ("{sql: SELECT k FROM a.b, by_key: {k: {b: k}}}", "", "is not `schema.table: expression`"),
        ("{sql: SELECT k FROM a.b, by_key: {'k k': {a.b: k}}}", "", "`by_key: k k` is not a column name"),
        ("{sql: SELECT k FROM a.b, reads_by_key: true}", "", "need `by_key`"),
        ("{sql: SELECT k FROM a.b, by_key: {k: {a.b: k}}, whole_if_changed: a.c}", "", "lists tables as schema.table"),
        ("{sql: SELECT k FROM a.b, by_key: {k: {a.b: k}}, reads_by_key: yes please}", "", "is true, false, or maps"),
        ("{sql: SELECT k FROM a.b, by_key: {k: {a.b: k}}, reads_by_key: {}}", "", "is true, false, or maps"),
        ("{sql: SELECT k FROM a.b, by_key: {k: {a.b: k}}, reads_by_key: {a.c: {k: k}}}", "", "a.c` is not a table"),
        ("{sql: SELECT k FROM a.b, by_key: {k: {a.b: k}}, reads_by_key: {a.b: {j: k}}}", "", "maps key columns of"),
        ("{sql: SELECT k FROM a.b, by_key: {k: {a.b: k}}, reads_by_key: {a.b: {k: 'k +'}}}", "", "reads_by_key a.b: k"),
        (
            "{sql: 'SELECT k, v FROM a.b JOIN a.c USING (k)', by_key: {k: {a.b: k}, v: {a.c: v}}, reads_by_key: true}",
            "",
            "`reads_by_key: true` needs a single `by_key` column",
        ),
        ("{sql: SELECT k FROM a.b, by_key: {k: {a.c: k}}}", "", "declares a.c, which its SQL does not read"),
        (
            "{sql: 'SELECT k FROM a.b JOIN a.c USING (k)', by_key: {k: {a.b: k}}}",
            "",
            "reads a.c, which it does not declare",
        ),
        (
            "{sql: '{reference Media.ResourceRecordKey}', by_key: {record_key: {reso_gold.media: MediaKey}}}",
            "",
            "its placeholder declares its keys from the mappings",
        ),
        (
            KEYED,
            "type: expect_column_mean_to_be_between, kwargs: {column: v, min_value: 0}",
            "mean_to_be_between is not",
        ),
        (
            KEYED,
            "type: expect_column_values_to_be_unique, kwargs: {column: v}",
            "or the uniqueness of k); expect_column_values_to_be_unique is not",
        ),
        (
            "{sql: 'SELECT k, v FROM a.b', by_key: {k: {a.b: k}, v: {a.b: v}}}",
            "type: expect_column_values_to_be_unique, kwargs: {column: k}",
            "to_not_match_regex); expect_column_values_to_be_unique is not",
        ),
        (KEYED, "type: expect_column_values_to_not_be_null, kwargs: {column: v, mostly: 0.9}", "without `mostly`"),
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


def test_a_declaration_that_cannot_be_computed_sends_its_dataset_whole_and_a_missing_key_column_fails(
    copy: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key expression naming no column costs a run by key its time on that dataset, never a verdict;
    a key column the dataset does not have fails its expectations, whole or by key."""
    real = suites()
    digest = suites_digest(real)

    def broken(name: str, dataset):
        if name == "property":
            return replace(dataset, by_key=(KeyedBy("ListingKey", (("reso_gold.property", "NoSuchColumn"),)),))
        if name == "contacts":
            return replace(dataset, by_key=(KeyedBy("NoSuchKey", (("reso_gold.contacts", "ContactKey"),)),))
        return dataset

    patched = tuple(
        replace(suite, datasets={name: broken(name, d) for name, d in suite.datasets.items()}) for suite in real
    )
    monkeypatch.setattr("expectations.integrity.suites", lambda: patched)
    monkeypatch.setattr("expectations.integrity.suites_digest", lambda _: digest)
    run_integrity(copy, build_docs=False)
    by_key = run_integrity(copy, build_docs=False, by_key=True)
    assert by_key.whole_datasets["reso_conformance.property"].startswith("its changed keys could not be found")
    assert {(r.scope, r.success) for r in by_key.results if r.dataset == "property"} == {("whole", True)}
    contacts = [r for r in by_key.results if r.dataset == "contacts"]
    assert contacts and all(not r.success and "has no column NoSuchKey" in r.message for r in contacts)


def test_the_quality_page_reads_results_kept_before_runs_by_key(tmp_path: Path) -> None:
    settings = load_settings(mls2_data_dir=tmp_path / "data")
    row = {"run_id": "old", "run_at": datetime(2026, 1, 1, tzinfo=UTC), "engine": "embedded", "suite": "s",
           "dataset": "d", "expectation": "e", "severity": "critical", "success": True, "observed_value": None,
           "unexpected_count": 0, "unexpected_sample": [], "message": None}  # fmt: skip
    old = pa.schema([field for field in RESULT_SCHEMA if field.name not in ("scope", "changed_keys")])
    write_deltalake(
        str(settings.paths.lakehouse / "mls2_system" / "integrity_results"), pa.Table.from_pylist([row], old)
    )
    [latest] = integrity_latest(settings.paths)
    assert (latest["dataset"], latest["scope"], latest["changed_keys"]) == ("d", "whole", None)
