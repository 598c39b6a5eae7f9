"""Rows DuckDB writes as Parquet become a Delta table's only through a commit, appended or replacing."""

from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from deltalake import DeltaTable, Field, write_deltalake

from pipelines._engine.errors import PipelineError
from pipelines._engine.lakehouse import FILE_COLUMN, ROW_COLUMN, Lakehouse, register_delta
from tests.conftest import delta_rows

NAME = "qobrix_bronze.things"


def rows(lakehouse: Lakehouse) -> list[dict]:
    return sorted(delta_rows(lakehouse.table(NAME)).to_pylist(), key=lambda row: row["id"])


def test_appended_files_are_the_versions_change_feed(tmp_path: Path) -> None:
    lakehouse, con = Lakehouse(tmp_path), duckdb.connect()
    first = lakehouse.write_files(con, NAME, "(SELECT 1 AS id, 'a' AS name)")
    lakehouse.commit_files(first, mode="overwrite", checkpoints={"reader<-landing": 3})
    second = lakehouse.write_files(con, NAME, "(SELECT 2 AS id, 'b' AS name UNION ALL SELECT 3, 'c')")
    version = lakehouse.commit_files(second, mode="append", metadata={"mls2.update_id": "u2"})

    table = lakehouse.table(NAME)
    assert rows(lakehouse) == [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}, {"id": 3, "name": "c"}]
    changes = pa.table(table.load_cdf(starting_version=version, ending_version=version)).to_pylist()
    assert sorted((row["id"], row["_change_type"]) for row in changes) == [(2, "insert"), (3, "insert")]
    assert table.transaction_version("reader<-landing") == 3
    assert table.history(1)[0]["mls2.update_id"] == "u2"
    assert all(field.nullable for field in table.schema().fields)


def test_files_not_committed_are_not_rows(tmp_path: Path) -> None:
    lakehouse, con = Lakehouse(tmp_path), duckdb.connect()
    lakehouse.commit_files(lakehouse.write_files(con, NAME, "(SELECT 1 AS id, 'a' AS name)"), mode="overwrite")
    lakehouse.write_files(con, NAME, "(SELECT 2 AS id, 'b' AS name)")

    assert rows(lakehouse) == [{"id": 1, "name": "a"}]


def test_an_append_with_a_new_column_adds_it_to_the_table(tmp_path: Path) -> None:
    lakehouse, con = Lakehouse(tmp_path), duckdb.connect()
    lakehouse.commit_files(lakehouse.write_files(con, NAME, "(SELECT 1 AS id, 'a' AS name)"), mode="overwrite")
    wider = lakehouse.write_files(con, NAME, "(SELECT 2 AS id, 'b' AS name, true AS featured)")
    lakehouse.commit_files(wider, mode="append")

    assert rows(lakehouse) == [{"id": 1, "name": "a", "featured": None}, {"id": 2, "name": "b", "featured": True}]
    on_disk = {path.name for path in lakehouse.path(NAME).glob("*.parquet")}
    assert on_disk == {Path(uri).name for uri in lakehouse.table(NAME).file_uris()}
    # The new column allows nulls, as every column does: older files lack it, later rows may hold none.
    assert all(field.nullable for field in lakehouse.table(NAME).schema().fields)
    later = lakehouse.write_files(con, NAME, "(SELECT 3 AS id, 'c' AS name, CAST(NULL AS BOOLEAN) AS featured)")
    lakehouse.commit_files(later, mode="append")
    feed = pa.table(lakehouse.table(NAME).load_cdf(starting_version=0)).to_pylist()
    assert sorted((row["id"], row["featured"]) for row in feed) == [(1, None), (2, True), (3, None)]


def test_a_column_no_file_holds_reads_as_null_in_the_schemas_place(tmp_path: Path) -> None:
    """Another Delta writer may add a column to the schema alone: the engine reads it as NULL of its
    type, where the schema puts it, as other Delta readers do (the files hold none of it)."""
    lakehouse, con = Lakehouse(tmp_path), duckdb.connect()
    lakehouse.commit_files(lakehouse.write_files(con, NAME, "(SELECT 1 AS id, 'a' AS name)"), mode="overwrite")
    lakehouse.table(NAME).alter.add_columns([Field("score", "double", nullable=True)])
    table = Lakehouse(tmp_path).table(NAME)

    register_delta(con, "things", table)
    register_delta(con, "things_at", table, positions=True)

    assert con.sql("DESCRIBE things").fetchall()[2][:2] == ("score", "DOUBLE")
    assert con.sql("SELECT * FROM things").fetchall() == [(1, "a", None)]
    assert [column for column, *_ in con.sql("DESCRIBE things_at").fetchall()] == [
        "id",
        "name",
        "score",
        FILE_COLUMN,
        ROW_COLUMN,
    ]


def test_a_table_whose_files_name_columns_by_column_mapping_is_refused_not_read_as_nulls(tmp_path: Path) -> None:
    write_deltalake(
        tmp_path / "mapped", pa.table({"id": [1], "name": ["a"]}), configuration={"delta.columnMapping.mode": "name"}
    )
    with pytest.raises(PipelineError, match=r"column mapping \(name mode\)"):
        register_delta(duckdb.connect(), "mapped", DeltaTable(str(tmp_path / "mapped")))


def test_an_empty_append_adds_no_file_and_moves_the_checkpoint(tmp_path: Path) -> None:
    lakehouse, con = Lakehouse(tmp_path), duckdb.connect()
    lakehouse.commit_files(lakehouse.write_files(con, NAME, "(SELECT 1 AS id, 'a' AS name)"), mode="overwrite")
    held = lakehouse.fingerprint(NAME)
    empty = lakehouse.write_files(con, NAME, "(SELECT 2 AS id, 'b' AS name WHERE false)")
    lakehouse.commit_files(empty, mode="append", checkpoints={"reader<-landing": 4})

    assert lakehouse.fingerprint(NAME) == held
    assert lakehouse.table(NAME).transaction_version("reader<-landing") == 4
    assert len(list(lakehouse.path(NAME).glob("*.parquet"))) == 1


def test_every_writers_commits_are_checkpointed_every_ten_versions(tmp_path: Path) -> None:
    """Opening a table replays the commits after its last checkpoint: whether delta-rs's writer
    (appends) or a transaction of the engine's files committed, the log is checkpointed once
    CHECKPOINT_INTERVAL versions have passed since the last checkpoint, not every 100 as delta-rs's
    writer does."""
    from pipelines._engine import delta_log

    lakehouse, con = Lakehouse(tmp_path), duckdb.connect()
    versions = 2 * delta_log.CHECKPOINT_INTERVAL + 1
    for number in range(versions):
        if number % 2:
            lakehouse.append(NAME, pa.table({"id": [number]}))
        else:
            con.execute(f"CREATE OR REPLACE TABLE batch AS SELECT {number}::BIGINT AS id")
            mode = "append" if number else "overwrite"
            lakehouse.commit_files(lakehouse.write_files(con, NAME, "batch"), mode=mode)
    log = lakehouse.path(NAME) / "_delta_log"
    assert sorted(path.name for path in log.glob("*.checkpoint.parquet")) == [
        f"{version:020d}.checkpoint.parquet"
        for version in (delta_log.CHECKPOINT_INTERVAL, 2 * delta_log.CHECKPOINT_INTERVAL)
    ]
    assert sorted(row["id"] for row in rows(lakehouse)) == list(range(versions))


def test_a_checkpoint_delta_rs_wrote_itself_counts(tmp_path: Path) -> None:
    """delta-rs checkpoints at versions 99, 199, ... (its own interval): the engine counts from there,
    and writes no other at 100."""
    from pipelines._engine import delta_log

    lakehouse = Lakehouse(tmp_path)
    lakehouse.append(NAME, pa.table({"id": [0]}))
    for number in range(1, delta_log.CHECKPOINT_INTERVAL - 1):
        write_deltalake(str(lakehouse.path(NAME)), pa.table({"id": [number]}), mode="append")
    DeltaTable(str(lakehouse.path(NAME))).create_checkpoint()  # as delta-rs's writer does at its interval
    for number in (delta_log.CHECKPOINT_INTERVAL - 1, delta_log.CHECKPOINT_INTERVAL):
        lakehouse.append(NAME, pa.table({"id": [number]}))
    assert lakehouse.table(NAME).version() == delta_log.CHECKPOINT_INTERVAL
    log = lakehouse.path(NAME) / "_delta_log"
    assert [path.name for path in log.glob("*.checkpoint.parquet")] == [
        f"{delta_log.CHECKPOINT_INTERVAL - 2:020d}.checkpoint.parquet"
    ]
