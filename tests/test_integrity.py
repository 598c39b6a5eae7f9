"""The integrity suite (Great Expectations) over a lakehouse fed by the sandbox: it passes on a
correct run; each injected fault fails the expectation that guards it, naming the records."""

import json
import re
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from deltalake import DeltaTable, write_deltalake
from typer.testing import CliRunner

from conf.cli import app
from conf.mappings import resource_mappings
from conf.settings import Settings, load_settings
from expectations.cli import integrity_after_update
from expectations.integrity import IntegrityError, IntegrityRun, docs_index, run_integrity
from expectations.suite_files import SuiteError, load_suite, suites
from pipelines import run_update
from pipelines.embedded import pipeline_lock
from tests.conftest import delta_rows


def table_path(settings: Settings, name: str) -> str:
    return str(settings.paths.lakehouse.joinpath(*name.split(".")))


def rewrite(settings: Settings, name: str, change: Callable[[pa.Table], pa.Table]) -> None:
    path = table_path(settings, name)
    write_deltalake(path, change(delta_rows(DeltaTable(path))), mode="overwrite")


def failed(run: IntegrityRun, expectation_dataset: str) -> list:
    return [r for r in run.results if r.dataset == expectation_dataset and not r.success]


def critical_failures(run: IntegrityRun) -> dict[str, tuple[str, ...]]:
    """Each failed critical expectation (`dataset: expectation`) with the records it names; but the
    served snapshot's, which any fault written into gold also breaks (gold is then ahead of it)."""
    return {
        f"{r.dataset}: {r.expectation}": r.unexpected_sample
        for r in run.critical_failures
        if r.dataset != "snapshot_tables"
    }


def set_value(table: pa.Table, key: str, column_name: str, value: str) -> pa.Table:
    index = table.schema.get_field_index(column_name)
    column = pc.if_else(pc.equal(table["ListingKey"], key), pa.scalar(value), table[column_name])
    return table.set_column(index, column_name, column)


def append_row(settings: Settings, name: str, change: Callable[[dict], dict], where: Callable[[dict], bool]) -> dict:
    """Append to a table a copy of its first row matching `where`, changed; the row appended."""
    table = delta_rows(DeltaTable(table_path(settings, name)))
    row = change(next(r for r in table.to_pylist() if where(r)))
    write_deltalake(table_path(settings, name), pa.Table.from_pylist([row], table.schema), mode="append")
    return row


def first_listing(settings: Settings, where: Callable[[dict], bool] = lambda row: True) -> dict:
    rows = delta_rows(DeltaTable(table_path(settings, "reso_gold.property"))).to_pylist()
    return next(row for row in sorted(rows, key=lambda r: r["ListingKey"]) if where(row))


def set_status(table: pa.Table, key: str, status: str) -> pa.Table:
    return set_value(table, key, "StandardStatus", status)


def test_a_correct_run_passes_and_its_results_are_kept(lakehouse_copy: Settings) -> None:
    run = run_integrity(lakehouse_copy)
    assert run.results and not run.critical_failures, [r for r in run.critical_failures]
    kept = delta_rows(DeltaTable(table_path(lakehouse_copy, "mls2_system.integrity_results")))
    assert kept.num_rows == len(run.results) and set(kept["run_id"].to_pylist()) == {run.run_id}
    assert run.docs is not None and run.docs.exists() and "reso_conformance" in (run.docs.read_text())


def test_a_mistranslated_status_fails_status_as_mapped_and_the_counts(lakehouse_copy: Settings) -> None:
    listing = first_listing(lakehouse_copy, lambda row: row["StandardStatus"] == "Active")
    rewrite(lakehouse_copy, "reso_gold.property", lambda t: set_status(t, listing["ListingKey"], "Withdrawn"))
    found = critical_failures(run_integrity(lakehouse_copy, build_docs=False))
    assert found.keys() == {
        "values_as_mapped: expect_column_values_to_be_in_set(status_as_mapped)",
        "counts_by_value: expect_column_pair_values_to_be_equal(qobrix,gold)",
    }
    assert found["values_as_mapped: expect_column_values_to_be_in_set(status_as_mapped)"] == (listing["ListingKey"],)
    assert set(found["counts_by_value: expect_column_pair_values_to_be_equal(qobrix,gold)"]) == {
        "StandardStatus Active",
        "StandardStatus Withdrawn",
    }


def test_a_mistranslated_property_type_fails_type_as_mapped(lakehouse_copy: Settings) -> None:
    listing = first_listing(lakehouse_copy, lambda row: row["PropertyType"] == "Residential")
    rewrite(lakehouse_copy, "reso_gold.property", lambda t: set_value(t, listing["ListingKey"], "PropertyType", "Farm"))
    found = critical_failures(run_integrity(lakehouse_copy, build_docs=False))
    assert found["values_as_mapped: expect_column_values_to_be_in_set(type_as_mapped)"] == (listing["ListingKey"],)
    assert "PropertyType Farm" in found["counts_by_value: expect_column_pair_values_to_be_equal(qobrix,gold)"]


def test_a_listing_dropped_between_silver_and_gold_is_not_accounted_for(lakehouse_copy: Settings) -> None:
    listing = first_listing(lakehouse_copy)
    rewrite(
        lakehouse_copy, "reso_gold.property", lambda t: t.filter(pc.not_equal(t["ListingKey"], listing["ListingKey"]))
    )
    found = critical_failures(run_integrity(lakehouse_copy, build_docs=False))
    assert found["landed_listings: expect_column_values_to_be_in_set(accounted_for)"] == (
        listing["OriginatingSystemKey"],
    )


def quarantined_only(settings: Settings) -> set[str]:
    """Live listings silver's rules hold in quarantine with no good version to serve."""
    quarantine = delta_rows(DeltaTable(table_path(settings, "mls2_system.quarantine"))).to_pylist()
    held = {json.loads(row["record"])["id"] for row in quarantine if row["dataset"] == "qobrix_silver.property"}
    served = {
        row["OriginatingSystemKey"]
        for row in delta_rows(DeltaTable(table_path(settings, "reso_gold.property"))).to_pylist()
    }
    return held - served


def test_a_live_listing_is_accounted_for_by_quarantine_only_while_its_rows_are_there(lakehouse_copy: Settings) -> None:
    held = quarantined_only(lakehouse_copy)
    assert held, "the sandbox's defects should leave a listing only in quarantine"
    assert not critical_failures(run_integrity(lakehouse_copy, build_docs=False))
    rewrite(
        lakehouse_copy,
        "mls2_system.quarantine",
        lambda t: t.filter(pc.not_equal(t["dataset"], "qobrix_silver.property")),
    )
    found = critical_failures(run_integrity(lakehouse_copy, build_docs=False))
    assert set(found["landed_listings: expect_column_values_to_be_in_set(accounted_for)"]) == held


def test_a_listing_deleted_in_qobrix_but_served_fails_not_removed(lakehouse_copy: Settings) -> None:
    listing = first_listing(lakehouse_copy)
    landed = append_row(
        lakehouse_copy,
        "qobrix_bronze.properties",
        lambda row: row | {"operation": "delete", "record_modified": datetime(2030, 1, 1, tzinfo=UTC)},
        lambda row: row["record_key"] == listing["OriginatingSystemKey"],
    )
    found = critical_failures(run_integrity(lakehouse_copy, build_docs=False))
    assert found == {"landed_listings: expect_column_values_to_be_in_set(not_removed)": (landed["record_key"],)}


def test_a_served_listing_never_landed_fails_has_source(lakehouse_copy: Settings) -> None:
    append_row(
        lakehouse_copy,
        "reso_gold.property",
        lambda row: row | {"ListingKey": "QOBRIX_never-landed", "OriginatingSystemKey": "never-landed"},
        lambda row: True,
    )
    found = critical_failures(run_integrity(lakehouse_copy, build_docs=False))
    assert found["landed_listings: expect_column_values_to_be_in_set(has_source)"] == ("never-landed",)


def test_an_orphan_media_row_fails_media_listing_naming_the_media(lakehouse_copy: Settings) -> None:
    def orphan(table: pa.Table) -> pa.Table:
        row = table.slice(0, 1).to_pylist()[0] | {"MediaKey": "QOBRIX_MEDIA_orphan", "ResourceRecordKey": "QOBRIX_gone",
                                                  "ResourceRecordID": "gone"}  # fmt: skip
        return pa.concat_tables([table, pa.Table.from_pylist([row], table.schema)])

    rewrite(lakehouse_copy, "reso_gold.media", orphan)
    found = critical_failures(run_integrity(lakehouse_copy, build_docs=False))
    assert found == {
        "media_listing: expect_column_values_to_be_in_set(resolves)": ("QOBRIX_MEDIA_orphan",),
        "media_has_listing: expect_column_values_to_be_in_set(listing_live)": ("QOBRIX_MEDIA_orphan",),
    }


def test_gold_newer_than_the_served_snapshot_fails_snapshot_tables(lakehouse_copy: Settings) -> None:
    rewrite(lakehouse_copy, "reso_gold.office", lambda table: table)
    [result] = failed(run_integrity(lakehouse_copy, build_docs=False), "snapshot_tables")
    assert result.unexpected_sample == ("reso_gold.office",)


def test_a_non_standard_lookup_value_fails_served_lookup_values(lakehouse_copy: Settings) -> None:
    listing = first_listing(lakehouse_copy)
    rewrite(lakehouse_copy, "reso_gold.property", lambda t: set_status(t, listing["ListingKey"], "Bogus"))
    found = critical_failures(run_integrity(lakehouse_copy, build_docs=False))
    assert found["served_lookup_values: expect_column_values_to_be_in_set(listed)"] == (listing["ListingKey"],)


def test_a_missing_table_is_a_failed_expectation_with_that_message(lakehouse_copy: Settings) -> None:
    shutil.rmtree(table_path(lakehouse_copy, "reso_gold.member"))
    results = failed(run_integrity(lakehouse_copy, build_docs=False), "member")
    assert results and all("cannot be read" in r.message and "member" in r.message for r in results)


def test_the_command_exits_non_zero_on_a_critical_failure(
    lakehouse_copy: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLS2_DATA_DIR", str(lakehouse_copy.paths.root))
    runner = CliRunner()
    assert runner.invoke(app, ["integrity", "run"]).exit_code == 0
    assert runner.invoke(app, ["integrity", "docs"]).output.strip().endswith("index.html")
    rewrite(lakehouse_copy, "reso_gold.office", lambda table: table)
    result = runner.invoke(app, ["integrity", "run"])
    assert result.exit_code == 1 and "1 critical failures" in result.output


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "suite: s\ndatasets: {d: SELECT 1}\nexpectations:\n  - {dataset: e, type: x}\n",
            "suite s, expectation 1: no dataset 'e'",
        ),
        (
            "suite: s\ndatasets: {d: SELECT 1}\nexpectations:\n  - {dataset: d, type: x, severity: fatal}\n",
            "severity 'fatal'",
        ),
        (
            "suite: s\ndatasets: {d: 'SELECT {mapped Property.Nope}'}\nexpectations: []\n",
            "no mapped field Property.Nope",
        ),
        (
            "suite: s\ndatasets: {d: '{reference Property.ListPrice}'}\nexpectations: []\n",
            "Property.ListPrice is not a reference",
        ),
        (
            "suite: s\ndatasets: {d: {sql: SELECT 1, engines: [oracle]}}\nexpectations: []\n",
            "suite s, dataset d: `engines` are some of embedded, spark",
        ),
        ("suite: s\nexpectations: []\n", "suite s (bad.yaml): needs `datasets`"),
        (
            "suite: s\ndatasets: {d: SELECT 1}\nexpectations:\n  - {dataset: d, type: x, kwargs: [1]}\n",
            "`kwargs` is a map",
        ),
        ("suite: s\ndatasets: [\n", "suite file bad.yaml cannot be read"),
    ],
)
def test_a_broken_suite_file_names_its_suite_and_expectation(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(body)
    with pytest.raises(SuiteError, match=re.escape(message)):
        load_suite(path)


def test_an_unknown_expectation_type_or_argument_is_named(
    lakehouse_copy: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from expectations import integrity

    bad = tmp_path / "bad.yaml"
    bad.write_text("suite: s\ndatasets: {d: SELECT 1 AS a}\nexpectations:\n"
                   "  - {dataset: d, type: expect_column_values_to_be_sparkly, kwargs: {column: a}}\n")  # fmt: skip
    monkeypatch.setattr(integrity, "suites", lambda: (load_suite(bad),))
    with pytest.raises(SuiteError, match=r"suite s, expectation 1 .*no expectation expect_column_values_to_be_sparkly"):
        run_integrity(lakehouse_copy, build_docs=False)
    wrong_argument = "{dataset: d, type: expect_column_values_to_be_in_set, kwargs: {column: a, valueset: [1]}}"
    bad.write_text(f"suite: s\ndatasets: {{d: SELECT 1 AS a}}\nexpectations:\n  - {wrong_argument}\n")
    with pytest.raises(SuiteError, match=r"suite s, expectation 1 .*valueset: extra fields not permitted"):
        run_integrity(lakehouse_copy, build_docs=False)


def test_it_runs_after_each_pipeline_run_unless_turned_off(
    lakehouse_copy: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLS2_DATA_DIR", str(lakehouse_copy.paths.root))
    result = CliRunner().invoke(app, ["pipeline", "run"])
    assert result.exit_code == 0 and "0 critical failures" in result.output
    rewrite(lakehouse_copy, "reso_gold.media", lambda t: t)  # gold ahead of the served snapshot
    assert integrity_after_update(load_settings()) is False
    monkeypatch.setenv("MLS2_INTEGRITY_AFTER_UPDATE", "false")
    assert integrity_after_update(load_settings()) is True


def test_a_listing_without_a_modification_time_is_not_taken_as_in_the_past(lakehouse_copy: Settings) -> None:
    listing = first_listing(lakehouse_copy)

    def unstamp(table: pa.Table) -> pa.Table:
        index = table.schema.get_field_index("ModificationTimestamp")
        nulls = pa.nulls(table.num_rows, table.schema.field(index).type)
        column = pc.if_else(pc.equal(table["ListingKey"], listing["ListingKey"]), nulls, table["ModificationTimestamp"])
        return table.set_column(index, "ModificationTimestamp", column)

    rewrite(lakehouse_copy, "reso_gold.property", unstamp)
    [result] = failed(run_integrity(lakehouse_copy, build_docs=False), "property_times")
    assert result.unexpected_sample == (listing["ListingKey"],)


def test_pipeline_run_exits_3_when_the_update_leaves_a_critical_failure(
    lakehouse_copy: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLS2_DATA_DIR", str(lakehouse_copy.paths.root))
    shutil.rmtree(table_path(lakehouse_copy, "qobrix_silver.property"))  # silver gone: reconciliation cannot read it
    result = CliRunner().invoke(app, ["pipeline", "run", "--refresh", "reso_gold.office"])
    assert result.exit_code == 3, result.output
    assert "critical integrity expectation failed" in result.output


def test_every_key_and_reference_the_mappings_declare_is_checked() -> None:
    """A resource or reference added to conf/mappings without its check fails here."""
    conformance = next(suite for suite in suites() if suite.name == "reso_conformance")
    for mapping in resource_mappings().values():
        checks = {
            expected.type
            for expected in conformance.expectations
            if expected.kwargs.get("column") == mapping.key
            and f"FROM {mapping.table}" in conformance.datasets[expected.dataset].sql
        }
        assert {"expect_column_values_to_be_unique", "expect_column_values_to_not_be_null"} <= checks, mapping.key
        for name in mapping.references:
            reads = f"s.{name} AS value, "
            [dataset] = [d for d in conformance.datasets.values() if reads in d.sql and mapping.table in d.sql]
            checks = {(e.type, e.kwargs.get("column")) for e in conformance.expectations if e.dataset == dataset.name}
            assert ("expect_column_values_to_be_in_set", "resolves") in checks, f"{mapping.resource}.{name}"


def test_a_non_standard_value_in_a_multi_valued_lookup_is_named(lakehouse_copy: Settings) -> None:
    listing = first_listing(lakehouse_copy)

    def bogus_appliance(table: pa.Table) -> pa.Table:
        index = table.schema.get_field_index("Appliances")
        values = [["Bogus"] if key == listing["ListingKey"] else value for key, value in
                  zip(table["ListingKey"].to_pylist(), table["Appliances"].to_pylist(), strict=True)]  # fmt: skip
        return table.set_column(index, "Appliances", pa.array(values, table.schema.field(index).type))

    rewrite(lakehouse_copy, "reso_gold.property", bogus_appliance)
    found = critical_failures(run_integrity(lakehouse_copy, build_docs=False))
    assert found["served_lookup_values: expect_column_values_to_be_in_set(listed)"] == (listing["ListingKey"],)


def test_a_blank_integrity_dir_is_the_default_and_only_the_docs_folder_is_replaced(
    lakehouse_copy: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLS2_DATA_DIR", str(lakehouse_copy.paths.root))
    monkeypatch.setenv("MLS2_INTEGRITY_DIR", "")
    assert docs_index(load_settings()) == lakehouse_copy.paths.root / "integrity" / "docs" / "index.html"
    chosen = tmp_path / "chosen"
    (chosen / "docs").mkdir(parents=True)
    (chosen / "kept.txt").write_text("not the suite's")
    (chosen / "docs" / "stale.html").write_text("an older run's page")
    monkeypatch.setenv("MLS2_INTEGRITY_DIR", str(chosen))
    run = run_integrity(load_settings())
    assert run.docs == chosen / "docs" / "index.html" and run.docs.exists()
    assert (chosen / "kept.txt").read_text() == "not the suite's"
    assert not (chosen / "docs" / "stale.html").exists()


def test_a_failure_while_pinning_the_tables_releases_the_pipeline_lock(lakehouse_copy: Settings) -> None:
    lakehouse_copy.sync_state_path.write_text("not a sync state")
    with pytest.raises(IntegrityError, match="sync state"):
        run_integrity(lakehouse_copy, build_docs=False)
    assert run_update(lakehouse_copy.paths).state == "COMPLETED"


def test_the_suite_does_not_start_while_an_update_holds_the_lock(lakehouse_copy: Settings) -> None:
    with pipeline_lock(lakehouse_copy.paths, "update u1"), pytest.raises(IntegrityError, match=r"busy \(update u1"):
        run_integrity(lakehouse_copy, build_docs=False)


def test_a_write_of_no_file_after_publishing_does_not_make_the_snapshot_stale(lakehouse_copy: Settings) -> None:
    """A view recomputed to the same rows commits a version of its own, which changes nothing served."""
    path = table_path(lakehouse_copy, "reso_gold.office")
    write_deltalake(path, delta_rows(DeltaTable(path)).slice(0, 0), mode="append")
    run = run_integrity(lakehouse_copy, build_docs=False)
    assert not [r for r in run.results if r.dataset == "snapshot_tables" and not r.success]


def test_the_results_tables_are_checkpointed_as_the_pipelines_tables_are(settings: Settings) -> None:
    """Appended after every update, the run log's table is checkpointed every 10 versions (delta-rs
    alone would every 100), so reading it replays few commits."""
    from expectations.by_key import RUN_SCHEMA, RUNS_TABLE
    from expectations.engines import EmbeddedEngine

    engine = EmbeddedEngine(settings, "run")
    for number in range(11):
        engine.append_run({"run_id": f"run {number}", "run_at": datetime.now(UTC), "engine": "embedded"})
    log = Path(table_path(settings, RUNS_TABLE)) / "_delta_log"
    assert [path.name for path in log.glob("*.checkpoint.parquet")] == [f"{10:020d}.checkpoint.parquet"]
    assert sorted(row["run_id"] for row in delta_rows(DeltaTable(str(log.parent))).to_pylist()) == sorted(
        f"run {number}" for number in range(11)
    )
    assert {field.name for field in DeltaTable(str(log.parent)).schema().to_arrow()} >= set(RUN_SCHEMA.names)
