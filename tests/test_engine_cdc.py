"""AUTO CDC semantics (SCD 1 and 2), temporary views and staged materialized views on the embedded engine."""

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from conf.entities import entities
from conf.settings import Settings
from ingestion.landing import LandingWriter
from pipelines import AutoCdc, Dataset, Expectation, UpdateFailed, run_update
from pipelines._engine import cdc, delta_log, key_index
from pipelines._engine.cdc import END_AT, START_AT
from pipelines._engine.context import QUARANTINE
from pipelines._engine.lakehouse import Lakehouse
from pipelines.bronze import bronze_datasets
from pipelines.declaration import build_graph
from tests.conftest import apply_by, data_quality, delta_rows

T0 = datetime(2026, 1, 1, tzinfo=UTC)

CHANGES_SQL = """
SELECT
  record_key AS id,
  get_json_object(payload, '$.status') AS status,
  CAST(get_json_object(payload, '$.price') AS DOUBLE) AS price,
  get_json_object(payload, '$.note') AS note,
  record_modified AS modified,
  operation
FROM STREAM(qobrix_bronze.properties)
"""


def event(key: str, minutes: int, status: str = "available", price: float = 100.0, note: str = "") -> dict:
    return {
        "id": key,
        "status": status,
        "price": price,
        "note": note,
        "modified": (T0 + timedelta(minutes=minutes)).isoformat(),
    }


def land(settings: Settings, sync_id: str, records: list[dict], operation: str = "upsert") -> None:
    LandingWriter(settings.landing_root, sync_id, started=T0).write_page(
        entities()["properties"], records, operation=operation
    )


def graph(*datasets: Dataset):
    bronze = [d for d in bronze_datasets() if d.name == "qobrix_bronze.properties"]
    return build_graph([*bronze, *datasets])


def scd(scd_type: int, **options: object) -> Dataset:
    cdc = AutoCdc(keys=("id",), sequence_by="modified", apply_as_deletes="operation = 'delete'",
                  except_column_list=("operation",), stored_as_scd_type=scd_type, **options)  # fmt: skip
    return Dataset(name="qobrix_silver.history", kind="auto_cdc", sql=CHANGES_SQL, cdc=cdc)


def priced_stream(*expectations: Expectation) -> Dataset:
    """A streaming table of each landed property's price and note, under `expectations`."""
    return Dataset(
        name="qobrix_silver.priced",
        kind="streaming_table",
        sql="SELECT record_key AS id, CAST(get_json_object(payload, '$.price') AS DOUBLE) AS price, "
        "get_json_object(payload, '$.note') AS note FROM STREAM(qobrix_bronze.properties)",
        expectations=expectations,
    )


def rows(settings: Settings, name: str) -> list[dict]:
    table = Lakehouse(settings.paths.lakehouse).table(name)
    return sorted(delta_rows(table).to_pylist(), key=lambda r: (r["id"], str(r.get(START_AT))))


def test_scd1_a_late_older_upsert_does_not_revive_a_deleted_key(settings: Settings, scd1_apply: str) -> None:
    pipeline = graph(scd(1))
    land(settings, "s1", [event("a", 10), event("b", 10)])
    run_update(settings.paths, graph=pipeline)
    land(settings, "s2", [event("a", 20)], operation="delete")
    run_update(settings.paths, graph=pipeline)
    land(settings, "s3", [event("a", 15, price=999), event("b", 30, price=5)])
    run_update(settings.paths, graph=pipeline)
    assert [(r["id"], r["price"]) for r in rows(settings, "qobrix_silver.history")] == [("b", 5.0)]
    land(settings, "s4", [event("a", 25, price=7)])
    run_update(settings.paths, graph=pipeline)
    assert [(r["id"], r["price"]) for r in rows(settings, "qobrix_silver.history")] == [("a", 7.0), ("b", 5.0)]


def test_scd1_tombstones_are_merged_only_when_a_key_is_deleted_or_revived(
    settings: Settings, scd1_apply: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Upserts of keys never deleted do not merge into the tombstones; a newer upsert of a deleted key
    forgets its tombstone."""
    merged: list[str] = []
    merge = DeltaTable.merge
    monkeypatch.setattr(
        DeltaTable, "merge", lambda table, *a, **k: merged.append(table.table_uri) or merge(table, *a, **k)
    )
    pipeline = graph(scd(1))
    stones = "qobrix_silver.history__tombstones"
    land(settings, "s1", [event("a", 10), event("b", 10)])
    run_update(settings.paths, graph=pipeline)
    land(settings, "s2", [event("a", 20)], operation="delete")
    run_update(settings.paths, graph=pipeline)
    assert [r["id"] for r in delta_rows(Lakehouse(settings.paths.lakehouse).table(stones)).to_pylist()] == ["a"]
    merged.clear()
    land(settings, "s3", [event("b", 30, price=5)])
    run_update(settings.paths, graph=pipeline)
    assert not [uri for uri in merged if "tombstones" in uri]
    land(settings, "s4", [event("a", 25, price=7)])
    run_update(settings.paths, graph=pipeline)
    assert [uri for uri in merged if "tombstones" in uri]
    assert delta_rows(Lakehouse(settings.paths.lakehouse).table(stones)).num_rows == 0
    assert [(r["id"], r["price"]) for r in rows(settings, "qobrix_silver.history")] == [("a", 7.0), ("b", 5.0)]


def test_scd1_a_column_without_nulls_at_full_refresh_takes_one_later(settings: Settings, scd1_apply: str) -> None:
    pipeline = graph(scd(1))
    land(settings, "s1", [event("a", 10, note="first"), event("b", 10, note="first")])
    run_update(settings.paths, graph=pipeline, full_refresh=True)
    assert all(
        field.nullable for field in Lakehouse(settings.paths.lakehouse).table("qobrix_silver.history").schema().fields
    )
    land(settings, "s2", [{**event("a", 20), "note": None, "price": None}])
    run_update(settings.paths, graph=pipeline)
    assert [(r["id"], r["price"], r["note"]) for r in rows(settings, "qobrix_silver.history")] == [
        ("a", None, None),
        ("b", 100.0, "first"),
    ]


@pytest.mark.parametrize("indexed", [False, True])
def test_scd1_keys_of_another_type_than_the_target_fail_naming_the_conversion(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, indexed: bool
) -> None:
    """A declaration that changes the key's type: through the key index as in a scan, the update fails
    with DuckDB's error naming the value and the column (the index would cast the keys itself)."""
    monkeypatch.setattr(cdc, "REWRITE_FRACTION", math.inf)
    monkeypatch.setattr(key_index, "INDEXED_CELLS", 0 if indexed else math.inf)
    numeric = replace(scd(1), sql=CHANGES_SQL.replace("record_key AS id", "CAST(record_key AS BIGINT) AS id"))
    land(settings, "s1", [event(str(number), 1) for number in range(1, 9)])
    run_update(settings.paths, graph=graph(numeric))
    land(settings, "s2", [event("x1", 2, price=5)])
    refused = r"Could not convert string 'x1' to INT64 when casting from source column id"
    with pytest.raises(UpdateFailed, match=refused):
        run_update(settings.paths, graph=graph(scd(1)))


def test_scd1_full_refresh_gives_the_same_answer_as_increments(settings: Settings, scd1_apply: str) -> None:
    pipeline = graph(scd(1))
    land(settings, "s1", [event("a", 10), event("b", 10), event("c", 1)])
    run_update(settings.paths, graph=pipeline)
    land(settings, "s2", [event("a", 5, price=1), event("c", 2)], operation="delete")
    land(settings, "s3", [event("b", 20, price=2)])
    run_update(settings.paths, graph=pipeline)
    incremental = rows(settings, "qobrix_silver.history")
    run_update(settings.paths, graph=pipeline, full_refresh=True)
    assert rows(settings, "qobrix_silver.history") == incremental
    assert [(r["id"], r["price"]) for r in incremental] == [("a", 100.0), ("b", 2.0)]


def test_merges_write_parquet_laid_out_like_every_other_write(settings: Settings, scd1_apply: str) -> None:
    """delta-rs MERGE left to its defaults wrote SNAPPY files (of one row group, however long): the
    target's merges or rewrites, and the tombstones' merges, must write ZSTD like every other write."""
    pipeline = graph(scd(1))
    land(settings, "s1", [event("a", 10), event("b", 10), event("c", 10)])
    run_update(settings.paths, graph=pipeline)
    land(settings, "s2", [event("a", 20, price=1)])
    land(settings, "s3", [event("b", 20)], operation="delete")
    run_update(settings.paths, graph=pipeline)
    land(settings, "s4", [event("c", 30)], operation="delete")
    run_update(settings.paths, graph=pipeline)
    lakehouse = Lakehouse(settings.paths.lakehouse)
    target_writes = "WRITE" if scd1_apply == "rewrite" else "MERGE"
    # Compactions (OPTIMIZE) aside: the second delete leaves most of the first file's rows deleted.
    last = {
        name: [commit["operation"] for commit in lakehouse.table(name).history(4) if commit["operation"] != "OPTIMIZE"]
        for name in lakehouse.names()
    }
    assert last["qobrix_silver.history"][:2] == [target_writes] * 2
    assert last["qobrix_silver.history__tombstones"][0] == "MERGE"
    compressions = {}
    for path in settings.paths.lakehouse.rglob("*.parquet"):
        metadata = pq.ParquetFile(path).metadata
        for row_group in range(metadata.num_row_groups):
            compressions[f"{path.parent.name}/{path.name}"] = metadata.row_group(row_group).column(0).compression
    assert set(compressions.values()) == {"ZSTD"}, compressions


def test_a_batch_changing_a_quarter_of_the_target_rewrites_it_whole(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch changing at least REWRITE_FRACTION of the target's rows is applied by writing the target
    anew, with a merge's rules and counts and the stream's checkpoint; a smaller batch merges on read."""
    pipeline = graph(scd(1))
    land(settings, "s1", [event("a", 10), event("b", 10), event("c", 10)])
    run_update(settings.paths, graph=pipeline)
    target = Lakehouse(settings.paths.lakehouse).table("qobrix_silver.history")
    assert len(target.file_uris()) == 1
    land(settings, "s2", [event("a", 20, price=1), event("b", 5, price=2), event("d", 20, price=3)])
    land(settings, "s3", [event("c", 30), event("e", 30)], operation="delete")
    result = run_update(settings.paths, graph=pipeline)
    [flow] = [f for f in result.flows if f.dataset == "qobrix_silver.history"]
    assert (flow.output_records, flow.deleted_records) == (2, 1)
    history = Lakehouse(settings.paths.lakehouse).table("qobrix_silver.history").history(1)[0]
    assert (history["operation"], history["operationParameters"]["mode"]) == ("WRITE", "Overwrite")
    assert [(r["id"], r["price"]) for r in rows(settings, "qobrix_silver.history")] == [
        ("a", 1.0),
        ("b", 100.0),
        ("d", 3.0),
    ]

    monkeypatch.setattr(cdc, "REWRITE_FRACTION", 0)
    land(settings, "s4", [event("a", 15, price=9), event("d", 15, price=9)])
    quiet = run_update(settings.paths, graph=pipeline)
    [flow] = [f for f in quiet.flows if f.dataset == "qobrix_silver.history"]
    assert (flow.output_records, flow.deleted_records) == (0, 0)
    commit = Lakehouse(settings.paths.lakehouse).table("qobrix_silver.history").history(1)[0]
    assert (commit["operation"], commit["operationParameters"]["mode"]) == ("WRITE", "Append")
    assert [(r["id"], r["price"]) for r in rows(settings, "qobrix_silver.history")][-1] == ("d", 3.0)
    assert {f.status for f in run_update(settings.paths, graph=pipeline).flows} == {"SKIPPED"}

    monkeypatch.setattr(cdc, "REWRITE_FRACTION", math.inf)
    land(settings, "s5", [event("b", 40, price=4)])
    run_update(settings.paths, graph=pipeline)
    assert Lakehouse(settings.paths.lakehouse).table("qobrix_silver.history").history(1)[0]["operation"] == "MERGE"
    assert [(r["id"], r["price"]) for r in rows(settings, "qobrix_silver.history")][1] == ("b", 4.0)

    monkeypatch.setattr(cdc, "REWRITE_FRACTION", 0)
    land(settings, "s6", [event(key, 50) for key in "abd"], operation="delete")
    emptied = run_update(settings.paths, graph=pipeline)
    assert [f.deleted_records for f in emptied.flows if f.dataset == "qobrix_silver.history"] == [3]
    assert rows(settings, "qobrix_silver.history") == []


def test_a_target_column_the_changes_no_longer_carry_keeps_its_values(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As a merge does: a rewrite would write the column empty, so the batch is merged."""
    monkeypatch.setattr(cdc, "REWRITE_FRACTION", 0)
    land(settings, "s1", [event("a", 10, note="kept")])
    run_update(settings.paths, graph=graph(scd(1)))
    narrower = replace(scd(1), cdc=replace(scd(1).cdc, except_column_list=("operation", "note")))
    land(settings, "s2", [event("a", 20, price=5, note="new")])
    run_update(settings.paths, graph=graph(narrower))
    assert [(r["id"], r["price"], r["note"]) for r in rows(settings, "qobrix_silver.history")] == [("a", 5.0, "kept")]


def test_a_target_without_the_declared_sequence_column_asks_for_its_full_refresh(settings: Settings) -> None:
    land(settings, "s1", [event("a", 10)])
    run_update(settings.paths, graph=graph(scd(1)))
    cdc = AutoCdc(keys=("id",), sequence_by="changed_at", stored_as_scd_type=1)
    renamed = CHANGES_SQL.replace("record_modified AS modified", "record_modified AS changed_at")
    redeclared = graph(Dataset(name="qobrix_silver.history", kind="auto_cdc", sql=renamed, cdc=cdc))
    land(settings, "s2", [event("a", 20, price=5)])
    with pytest.raises(UpdateFailed, match=r"holds no changed_at .*--full-refresh-selection qobrix_silver\.history"):
        run_update(settings.paths, graph=redeclared)
    run_update(settings.paths, graph=redeclared, full_refresh_selection=["qobrix_silver.history"])
    assert [(r["id"], r["price"]) for r in rows(settings, "qobrix_silver.history")] == [("a", 5.0)]


def test_tombstones_without_a_declared_key_ask_for_a_full_refresh(settings: Settings) -> None:
    land(settings, "s1", [event("a", 10), event("b", 10)])
    land(settings, "s2", [event("b", 20)], operation="delete")
    run_update(settings.paths, graph=graph(scd(1)))
    wider = Dataset(
        name="qobrix_silver.history", kind="auto_cdc", sql=CHANGES_SQL, cdc=replace(scd(1).cdc, keys=("id", "status"))
    )
    land(settings, "s3", [event("a", 30, price=5)])
    with pytest.raises(UpdateFailed, match=r"history__tombstones holds no status .*--full-refresh-selection"):
        run_update(settings.paths, graph=graph(wider))


def test_scd2_keeps_every_version_with_start_and_end(settings: Settings, scd2_apply: str) -> None:
    pipeline = graph(scd(2))
    land(settings, "s1", [event("a", 10, price=100)])
    run_update(settings.paths, graph=pipeline)
    land(settings, "s2", [event("a", 20, price=90), event("a", 30, status="sold", price=90)])
    run_update(settings.paths, graph=pipeline)
    history = rows(settings, "qobrix_silver.history")
    assert [(r["price"], r["status"]) for r in history] == [(100.0, "available"), (90.0, "available"), (90.0, "sold")]
    assert [r[START_AT] for r in history] == [T0 + timedelta(minutes=m) for m in (10, 20, 30)]
    assert [r[END_AT] for r in history] == [T0 + timedelta(minutes=m) for m in (20, 30)] + [None]


def test_scd2_places_out_of_order_events_and_closes_on_delete(settings: Settings, scd2_apply: str) -> None:
    pipeline = graph(scd(2))
    land(settings, "s1", [event("a", 10, price=100), event("a", 30, price=80)])
    run_update(settings.paths, graph=pipeline)
    land(settings, "s2", [event("a", 20, price=90)])
    land(settings, "s3", [event("a", 40)], operation="delete")
    run_update(settings.paths, graph=pipeline)
    history = rows(settings, "qobrix_silver.history")
    assert [r["price"] for r in history] == [100.0, 90.0, 80.0]
    assert [r[END_AT] for r in history] == [T0 + timedelta(minutes=m) for m in (20, 30, 40)]
    land(settings, "s4", [event("a", 50, price=70)])
    run_update(settings.paths, graph=pipeline)
    assert [(r["price"], r[END_AT]) for r in rows(settings, "qobrix_silver.history")][-1] == (70.0, None)
    written = [c["operation"] for c in Lakehouse(settings.paths.lakehouse).table("qobrix_silver.history").history(3)]
    assert ("MERGE" in written) == (scd2_apply == "merge"), written


def test_scd2_a_delete_wins_over_an_upsert_of_the_same_sequence(settings: Settings, scd2_apply: str) -> None:
    keys = [f"k{index:02d}" for index in range(40)]
    land(settings, "s1", [event(key, 1) for key in keys])
    run_update(settings.paths, graph=graph(scd(2)))
    land(settings, "s2", [event(key, 2, price=50) for key in keys])
    land(settings, "s3", [event(key, 2) for key in keys], operation="delete")
    run_update(settings.paths, graph=graph(scd(2)))
    history = rows(settings, "qobrix_silver.history")
    assert [(r["id"], r["price"], r[END_AT]) for r in history] == [
        (key, 100.0, T0 + timedelta(minutes=2)) for key in keys
    ]


def test_scd2_a_key_deleted_in_one_update_and_back_in_a_later_one_keeps_the_gap(settings: Settings) -> None:
    """The version a delete closed stays closed at the delete when the key comes back: its history
    shows when the listing was gone."""
    pipeline = graph(scd(2))
    land(settings, "s1", [event("a", 10)])
    run_update(settings.paths, graph=pipeline)
    land(settings, "s2", [event("a", 20)], operation="delete")
    run_update(settings.paths, graph=pipeline)
    land(settings, "s3", [event("a", 30, price=80)])
    run_update(settings.paths, graph=pipeline)
    history = rows(settings, "qobrix_silver.history")
    assert [(r["price"], r[START_AT], r[END_AT]) for r in history] == [
        (100.0, T0 + timedelta(minutes=10), T0 + timedelta(minutes=20)),
        (80.0, T0 + timedelta(minutes=30), None),
    ]


def test_scd2_track_history_updates_untracked_columns_in_place(settings: Settings, scd2_apply: str) -> None:
    pipeline = graph(scd(2, track_history_column_list=("price", "status")))
    land(settings, "s1", [event("a", 10, note="first")])
    run_update(settings.paths, graph=pipeline)
    land(settings, "s2", [event("a", 20, note="typo fixed"), event("a", 30, price=50, note="price cut")])
    run_update(settings.paths, graph=pipeline)
    history = rows(settings, "qobrix_silver.history")
    assert [(r["price"], r["note"]) for r in history] == [(100.0, "typo fixed"), (50.0, "price cut")]


def test_a_streaming_table_reads_through_a_temporary_view_incrementally(settings: Settings) -> None:
    view = Dataset(
        name="qobrix_silver.cheap",
        kind="temporary_view",
        sql="SELECT * FROM STREAM(qobrix_bronze.properties) "
        "WHERE CAST(get_json_object(payload, '$.price') AS DOUBLE) < 50",
    )
    table = Dataset(
        name="qobrix_silver.cheap_log",
        kind="streaming_table",
        sql="SELECT record_key AS id FROM STREAM(qobrix_silver.cheap)",
    )
    pipeline = graph(view, table)
    land(settings, "s1", [event("a", 1, price=10), event("b", 1, price=500)])
    run_update(settings.paths, graph=pipeline)
    land(settings, "s2", [event("c", 2, price=20)])
    result = run_update(settings.paths, graph=pipeline)
    assert next(f for f in result.flows if f.dataset == "qobrix_silver.cheap_log").output_records == 1
    assert sorted(r["id"] for r in rows(settings, "qobrix_silver.cheap_log")) == ["a", "c"]


def test_a_materialized_view_reads_a_temporary_view_whole_through_the_views_it_reads(settings: Settings) -> None:
    """A temporary view read without STREAM(...) is computed over all of its inputs, themselves
    temporary views read the same way, at every update."""
    landed = Dataset(
        name="qobrix_silver.landed_prices",
        kind="temporary_view",
        sql="SELECT record_key AS id, CAST(get_json_object(payload, '$.price') AS DOUBLE) AS price "
        "FROM qobrix_bronze.properties",
    )
    cheap = Dataset(
        name="qobrix_silver.cheap_now", kind="temporary_view", sql="SELECT * FROM qobrix_silver.landed_prices"
    )
    summary = Dataset(
        name="qobrix_silver.cheap_summary",
        kind="materialized_view",
        sql="SELECT 'cheap' AS id, count(*) AS listings, min(price) AS lowest "
        "FROM qobrix_silver.cheap_now WHERE price < 50",
    )
    pipeline = graph(landed, cheap, summary)
    land(settings, "s1", [event("a", 1, price=10), event("b", 1, price=500)])
    run_update(settings.paths, graph=pipeline)
    assert [(r["listings"], r["lowest"]) for r in rows(settings, "qobrix_silver.cheap_summary")] == [(1, 10.0)]
    land(settings, "s2", [event("c", 2, price=5)])
    run_update(settings.paths, graph=pipeline)
    assert [(r["listings"], r["lowest"]) for r in rows(settings, "qobrix_silver.cheap_summary")] == [(2, 5.0)]


def test_a_streaming_table_whose_rules_only_warn_counts_them_as_it_writes(settings: Settings) -> None:
    table = priced_stream(Expectation("priced", "price > 0", "warn"), Expectation("cheap", "price < 1000", "warn"))
    land(settings, "s1", [event("a", 1), event("b", 1, price=-1), event("c", 1, price=5000), event("d", 1, price=0)])
    result = run_update(settings.paths, graph=graph(table))

    assert [r["id"] for r in rows(settings, "qobrix_silver.priced")] == ["a", "b", "c", "d"]
    quality = data_quality(settings, result.update_id, "qobrix_silver.priced")
    assert quality["dropped_records"] == 0
    assert {e["name"]: (e["passed_records"], e["failed_records"]) for e in quality["expectations"]} == {
        "priced": (2, 2),
        "cheap": (3, 1),
    }


def test_a_streaming_table_whose_rules_cannot_be_counted_keeps_none_of_its_files(settings: Settings) -> None:
    pipeline = graph(priced_stream(Expectation("numbered", "CAST(note AS INT) > 0", "warn")))
    land(settings, "s1", [event("a", 1, note="7")])
    run_update(settings.paths, graph=pipeline)
    folder = Lakehouse(settings.paths.lakehouse).path("qobrix_silver.priced")
    before = sorted(folder.glob("*.parquet"))
    land(settings, "s2", [event("b", 2, note="not a number")])

    with pytest.raises(UpdateFailed, match=r"qobrix_silver\.priced"):
        run_update(settings.paths, graph=pipeline)
    assert sorted(folder.glob("*.parquet")) == before
    assert [r["id"] for r in rows(settings, "qobrix_silver.priced")] == ["a"]


def test_a_streaming_table_quarantines_what_its_drop_rules_drop(settings: Settings) -> None:
    table = priced_stream(
        Expectation("noted", "note <> ''", "warn"),
        Expectation("priced", "price > 0", "drop"),
        Expectation("cheap", "price < 1000", "drop"),
    )
    pipeline = graph(table)
    land(settings, "s1", [event("a", 1, note="x"), event("b", 1, price=-1), event("c", 1, price=5000, note="y")])
    result = run_update(settings.paths, graph=pipeline)

    flow = next(f for f in result.flows if f.dataset == "qobrix_silver.priced")
    assert (flow.input_records, flow.dropped_records, flow.output_records) == (3, 2, 1)
    assert [r["id"] for r in rows(settings, "qobrix_silver.priced")] == ["a"]
    quarantine = delta_rows(Lakehouse(settings.paths.lakehouse).table(QUARANTINE)).to_pylist()
    quarantined = {orjson.loads(r["record"])["id"]: r["broken_rules"] for r in quarantine}
    assert quarantined == {"b": ["noted", "priced"], "c": ["cheap"]}
    quality = data_quality(settings, result.update_id, "qobrix_silver.priced")
    assert quality["dropped_records"] == 2
    assert {e["name"]: (e["passed_records"], e["failed_records"]) for e in quality["expectations"]} == {
        "noted": (2, 1),
        "priced": (2, 1),
        "cheap": (2, 1),
    }


def test_a_streaming_table_whose_rules_all_drop_quarantines_what_they_drop(settings: Settings) -> None:
    """No rule warns, so none of them is left to be counted after the write."""
    pipeline = graph(priced_stream(Expectation("priced", "price > 0", "drop")))
    land(settings, "s1", [event("a", 1), event("b", 1, price=-1)])
    result = run_update(settings.paths, graph=pipeline)
    assert [r["id"] for r in rows(settings, "qobrix_silver.priced")] == ["a"]
    assert data_quality(settings, result.update_id, "qobrix_silver.priced")["dropped_records"] == 1


def test_a_streaming_table_with_a_broken_fail_rule_writes_nothing(settings: Settings) -> None:
    pipeline = graph(priced_stream(Expectation("cheap", "price < 1000", "fail")))
    land(settings, "s1", [event("a", 1)])
    run_update(settings.paths, graph=pipeline)
    version = Lakehouse(settings.paths.lakehouse).version("qobrix_silver.priced")
    land(settings, "s2", [event("b", 2), event("c", 2, price=5000)])
    with pytest.raises(UpdateFailed, match=r"cheap.*Sample row.*5000"):
        run_update(settings.paths, graph=pipeline)
    assert Lakehouse(settings.paths.lakehouse).version("qobrix_silver.priced") == version
    assert [r["id"] for r in rows(settings, "qobrix_silver.priced")] == ["a"]


def test_a_materialized_view_writes_only_the_rows_its_drop_rules_keep(settings: Settings) -> None:
    view = Dataset(
        name="reso_gold.priced",
        kind="materialized_view",
        sql="SELECT id, price FROM qobrix_silver.history",
        expectations=(Expectation("cheap", "price < 1000", "drop"),),
    )
    pipeline = graph(scd(1), view)
    land(settings, "s1", [event("a", 1, price=10), event("b", 1, price=5000)])
    result = run_update(settings.paths, graph=pipeline)
    assert [r["id"] for r in rows(settings, "reso_gold.priced")] == ["a"]
    flow = next(f for f in result.flows if f.dataset == "reso_gold.priced")
    assert (flow.input_records, flow.dropped_records, flow.output_records) == (2, 1, 1)

    land(settings, "s2", [event("b", 2, price=500)])
    run_update(settings.paths, graph=pipeline)
    assert [(r["id"], r["price"]) for r in rows(settings, "reso_gold.priced")] == [("a", 10.0), ("b", 500.0)]


def test_a_materialized_view_is_a_delta_table_any_reader_reads_across_its_versions(settings: Settings) -> None:
    view = Dataset(name="reso_gold.priced", kind="materialized_view", sql="SELECT id, price FROM qobrix_silver.history")
    land(settings, "s1", [event("a", 1, price=10), event("b", 1, price=20)])
    run_update(settings.paths, graph=graph(scd(1), view))
    wider = replace(view, sql="SELECT id, price, status, modified FROM qobrix_silver.history")
    land(settings, "s2", [event("a", 2, price=15)])
    run_update(settings.paths, graph=graph(scd(1), wider))

    table = Lakehouse(settings.paths.lakehouse).table("reso_gold.priced")
    assert table.schema().to_arrow().names == ["id", "price", "status", "modified"]
    assert all(field.nullable for field in table.schema().fields), "no row had a null, yet a later one may"
    assert sorted(delta_rows(table).to_pylist(), key=lambda r: r["id"]) == [
        {"id": "a", "price": 15.0, "status": "available", "modified": T0 + timedelta(minutes=2)},
        {"id": "b", "price": 20.0, "status": "available", "modified": T0 + timedelta(minutes=1)},
    ]
    [latest] = table.history(1)
    assert latest["operation"] == "WRITE" and "mls2.update_id" in latest
    files = pa.table(table.get_add_actions(flatten=True))
    assert sum(files.column("num_records").to_pylist()) == 2
    table.load_as_version(table.version() - 1)
    assert table.schema().to_arrow().names == ["id", "price"]
    assert sorted(r["price"] for r in delta_rows(table).to_pylist()) == [10.0, 20.0]


def test_materialized_views_are_written_only_when_the_whole_update_succeeds(settings: Settings) -> None:
    first = Dataset(name="reso_gold.first", kind="materialized_view", sql="SELECT id, price FROM qobrix_silver.history")
    second = Dataset(
        name="reso_gold.second", kind="materialized_view", sql="SELECT id, price FROM reso_gold.first",
        expectations=(Expectation("cheap", "price < 1000", "fail"),),
    )  # fmt: skip
    pipeline = graph(scd(1), first, second)
    land(settings, "s1", [event("a", 1, price=10)])
    run_update(settings.paths, graph=pipeline)
    lakehouse = Lakehouse(settings.paths.lakehouse)
    version = lakehouse.version("reso_gold.first")
    land(settings, "s2", [event("b", 2, price=5000)])
    with pytest.raises(UpdateFailed, match="cheap"):
        run_update(settings.paths, graph=pipeline)
    assert lakehouse.version("reso_gold.first") == version, "reso_gold.first was computed, then not written"
    assert [r["id"] for r in rows(settings, "reso_gold.first")] == ["a"]


def test_scd2_a_null_key_is_one_key_across_batches(settings: Settings, scd2_apply: str) -> None:
    """As the history rebuilt within one batch groups NULL keys, a later batch finds their stored
    versions: one open version, the earlier one closed."""
    pipeline = graph(scd(2))
    land(settings, "s1", [event(None, 10, price=100), event("a", 10)])
    run_update(settings.paths, graph=pipeline)
    land(settings, "s2", [event(None, 20, price=90)])
    run_update(settings.paths, graph=pipeline)
    stored = delta_rows(Lakehouse(settings.paths.lakehouse).table("qobrix_silver.history")).to_pylist()
    nulls = [(r["price"], r[END_AT]) for r in stored if r["id"] is None]
    assert sorted(nulls, key=lambda pair: pair[0]) == [(90.0, None), (100.0, T0 + timedelta(minutes=20))]


@pytest.mark.parametrize("how", ["rewrite", "merge"])
def test_an_auto_cdc_target_is_checkpointed_whichever_way_it_is_written(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """Written anew (delta-rs's overwrite) or merged on read (the engine's commits), the target's log
    is checkpointed every CHECKPOINT_INTERVAL versions, as every table's is."""
    apply_by(how, monkeypatch)
    pipeline = graph(scd(1))
    for number in range(delta_log.CHECKPOINT_INTERVAL + 1):
        land(settings, f"s{number}", [event("a", number + 1, price=number), event("b", 1)])
        run_update(settings.paths, graph=pipeline)
    table = Lakehouse(settings.paths.lakehouse).table("qobrix_silver.history")
    assert table.version() >= delta_log.CHECKPOINT_INTERVAL
    assert list(
        (Lakehouse(settings.paths.lakehouse).path("qobrix_silver.history") / "_delta_log").glob("*.checkpoint.parquet")
    )
    assert [(r["id"], r["price"]) for r in rows(settings, "qobrix_silver.history")] == [
        ("a", float(delta_log.CHECKPOINT_INTERVAL)),
        ("b", 100.0),
    ]
