"""The key index (`pipelines/_engine/key_index.py`): after merges with deletion vectors, compactions,
overwrites and failures, the rows it locates are the rows a scan of the table's files finds."""

import math
import random
import re
import sqlite3
from contextlib import closing
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from conf.cli import app
from conf.settings import load_settings
from pipelines._engine import key_index as key_index_module
from pipelines._engine.key_index import Layout, key_index
from pipelines._engine.lakehouse import FILE_COLUMN, ROW_COLUMN, Lakehouse, register_delta
from tests.test_engine import land, rows
from tests.test_engine_incremental import listing, planning

NAME = "s.listings"
LAYOUT = Layout(lookups=("id", "unit"), carried=("seq",))
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
def every_table_indexed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(key_index_module, "INDEXED_CELLS", 0)


def create(lakehouse: Lakehouse, con: duckdb.DuckDBPyConnection, rows: int) -> None:
    con.execute(
        f"CREATE OR REPLACE TABLE seed AS SELECT 'k' || i AS id, i % 97 AS unit, "
        f"TIMESTAMPTZ '2026-01-01 00:00:00+00' + INTERVAL (i) SECOND AS seq, 'v0' AS v FROM range({rows}) t(i)"
    )
    lakehouse.commit_files(lakehouse.write_files(con, NAME, "seed"), mode="overwrite")


def merge(lakehouse: Lakehouse, con: duckdb.DuckDBPyConnection, keys: list[str], round_number: int) -> None:
    """Rows of `keys` replaced (the first half) or deleted, merge-on-read, found by a scan."""
    upserts = keys[: len(keys) // 2]
    con.execute("CREATE OR REPLACE TABLE touched (id VARCHAR)")
    con.executemany("INSERT INTO touched VALUES (?)", [(key,) for key in keys])
    con.execute("CREATE OR REPLACE TABLE batch (id VARCHAR, unit BIGINT, seq TIMESTAMPTZ, v VARCHAR)")
    con.executemany(
        "INSERT INTO batch VALUES (?, ?, ?, ?)",
        [(key, round_number, EPOCH + timedelta(days=round_number), f"v{round_number}") for key in upserts],
    )
    register_delta(con, "positions", lakehouse.table(NAME), positions=True)
    con.execute("CREATE OR REPLACE TABLE replaced AS SELECT __file, __row FROM positions SEMI JOIN touched USING (id)")
    written = lakehouse.write_files(con, NAME, "batch", per_thread=False) if upserts else None
    lakehouse.delete_and_add(con, NAME, "replaced", written)


def scanned(lakehouse: Lakehouse, con: duckdb.DuckDBPyConnection, column: str, values: list) -> list[tuple]:
    register_delta(con, "positions", lakehouse.table(NAME), positions=True)
    bind = pa.table({"value": pa.array(values, pa.string() if column == "id" else pa.int64())})
    con.register("wanted", bind)
    found = con.execute(
        f"SELECT {FILE_COLUMN}, {ROW_COLUMN}, id, unit, seq FROM positions WHERE {column} IN (SELECT value FROM wanted)"
    ).fetchall()
    con.unregister("wanted")
    return sorted(found)


def located(lakehouse: Lakehouse, column: str, values: list) -> list[tuple]:
    index = key_index(lakehouse, NAME, LAYOUT)
    kind = pa.string() if column == "id" else pa.int64()
    found = index.locate(column, pa.array(values, kind))
    assert found.column_names == [FILE_COLUMN, ROW_COLUMN, "id", "unit", "seq"]
    assert found.schema.field("seq").type == pa.timestamp("us", tz="UTC")
    return sorted(tuple(row.values()) for row in found.to_pylist())


def test_located_rows_are_the_scanned_rows_through_merges_compactions_and_an_overwrite(tmp_path: Path) -> None:
    lakehouse, con, draw = Lakehouse(tmp_path), duckdb.connect(), random.Random(31)
    create(lakehouse, con, 40_000)
    for round_number in range(1, 13):
        keys = [f"k{i}" for i in draw.sample(range(41_000), 600)]
        merge(lakehouse, con, keys, round_number)
        if round_number == 8:
            lakehouse.compact(con, NAME, deleted_fraction=0.0, small_files=0)
        if round_number in (3, 6, 8, 12):
            probe = [f"k{i}" for i in draw.sample(range(41_000), 300)] + keys[:50] + [None, "absent"]
            found = located(lakehouse, "id", probe)
            assert found == scanned(lakehouse, con, "id", [value for value in probe if value is not None])
            assert {row[2] for row in found} & set(keys[:50])
            units = [0, 5, round_number]
            assert located(lakehouse, "unit", units) == scanned(lakehouse, con, "unit", units)
    create(lakehouse, con, 5_000)
    assert located(lakehouse, "id", ["k1", "k4999", "k6000"]) == scanned(lakehouse, con, "id", ["k1", "k4999", "k6000"])
    index = sqlite3.connect(tmp_path / "_key_index" / f"{NAME}.sqlite")
    files = [file_id for (file_id,) in index.execute("SELECT id FROM files")]
    assert len(files) == len(lakehouse.table(NAME).file_uris())
    assert sum(index.execute(f"SELECT count(*) FROM file_{file_id}").fetchone()[0] for file_id in files) == 5_000
    held = {name for (name,) in index.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert held == {"meta", "files", *(f"file_{file_id}" for file_id in files)}


def test_a_failure_while_catching_up_leaves_the_index_as_it_was_and_the_next_lookup_right(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lakehouse, con = Lakehouse(tmp_path), duckdb.connect()
    create(lakehouse, con, 20_000)
    assert len(located(lakehouse, "id", ["k7"])) == 1
    merge(lakehouse, con, ["k7", "k8", "k9", "k10"], 1)

    def unbindable(values: pa.Array) -> list:
        """The merge's file (two rows) with its last value unbindable; the one key looked up as it is."""
        return [*values.to_pylist()[:-1], object()] if len(values) > 1 else values.to_pylist()

    def held() -> tuple[list, list]:
        with closing(sqlite3.connect(tmp_path / "_key_index" / f"{NAME}.sqlite")) as index:
            tables = index.execute("SELECT name FROM sqlite_master ORDER BY name").fetchall()
            return tables, index.execute("SELECT * FROM files ORDER BY id").fetchall()

    before = held()
    with monkeypatch.context() as patched:
        # The merge's file fails half-way through being indexed: its last row cannot be written.
        patched.setattr(key_index_module, "_to_sqlite", unbindable)
        with pytest.raises(sqlite3.ProgrammingError):
            key_index(lakehouse, NAME, LAYOUT).locate("id", pa.array(["k7"]))
    assert held() == before
    probe = ["k7", "k8", "k9", "k10"]
    assert located(lakehouse, "id", probe) == scanned(lakehouse, con, "id", probe)
    assert [row[2] for row in located(lakehouse, "id", probe)] == ["k7", "k8"]


def test_an_index_of_other_columns_is_built_anew(tmp_path: Path) -> None:
    lakehouse, con = Lakehouse(tmp_path), duckdb.connect()
    create(lakehouse, con, 1_000)
    key_index(lakehouse, NAME, Layout(lookups=("unit",))).locate("unit", pa.array([3]))
    assert located(lakehouse, "id", ["k3"]) == scanned(lakehouse, con, "id", ["k3"])
    with pytest.raises(ValueError, match="looks rows up by id, unit, not seq"):
        key_index(lakehouse, NAME, LAYOUT).locate("seq", pa.array([EPOCH]))


def test_an_index_file_of_another_format_or_not_a_database_is_built_anew(tmp_path: Path) -> None:
    lakehouse, con = Lakehouse(tmp_path), duckdb.connect()
    create(lakehouse, con, 1_000)
    path = lakehouse.key_index_path(NAME)
    path.parent.mkdir(parents=True)
    with closing(sqlite3.connect(path)) as old:
        # The first layout: every row in one table, under a signature of the columns alone.
        signature = "\n".join(f"{column}:{kind}" for column, kind in [("id", "string"), ("unit", "int64")])
        old.executescript(
            "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT); CREATE TABLE files (id INTEGER PRIMARY KEY,"
            " path TEXT UNIQUE, live INTEGER); CREATE TABLE rows (file, row, c0, c1);"
        )
        old.execute("INSERT INTO meta VALUES ('signature', ?)", (signature,))
        for uri in lakehouse.table(NAME).file_uris():
            old.execute("INSERT INTO files (path, live) VALUES (?, 0)", (Path(uri).name,))
        old.commit()
    layout = Layout(lookups=("id", "unit"))
    assert len(key_index(lakehouse, NAME, layout).locate("id", pa.array(["k3"]))) == 1
    path.write_bytes(b"not a database, and long enough to be read as one " * 100)
    assert len(key_index(lakehouse, NAME, layout).locate("unit", pa.array([3]))) == len(
        scanned(lakehouse, con, "unit", [3])
    )


def test_a_date_column_older_files_lack_is_looked_up_as_null_there(tmp_path: Path) -> None:
    lakehouse, con = Lakehouse(tmp_path), duckdb.connect()
    create(lakehouse, con, 100)
    con.execute(
        "CREATE OR REPLACE TABLE later AS SELECT 'n' || i AS id, i AS unit, "
        "TIMESTAMPTZ '2026-02-01 00:00:00+00' AS seq, 'v1' AS v, DATE '2026-03-01' + i::INTEGER AS listed "
        "FROM range(5) t(i)"
    )
    lakehouse.commit_files(lakehouse.write_files(con, NAME, "later", per_thread=False), mode="append")
    found = key_index(lakehouse, NAME, Layout(lookups=("listed",), carried=("id",))).locate(
        "listed", pa.array([date(2026, 3, 2), date(2026, 3, 4), None])
    )
    assert found.schema.field("listed").type == pa.date32()
    assert sorted(found.column("id").to_pylist()) == ["n1", "n3"]
    assert sorted(found.column("listed").to_pylist()) == [date(2026, 3, 2), date(2026, 3, 4)]


def test_small_tables_and_columns_sqlite_cannot_hold_exactly_are_scanned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lakehouse, con = Lakehouse(tmp_path), duckdb.connect()
    create(lakehouse, con, 1_000)
    assert key_index(lakehouse, NAME, Layout(lookups=("id",), carried=("v",))) is not None
    con.execute("CREATE OR REPLACE TABLE decimals AS SELECT 1.5::DECIMAL(9, 2) AS price")
    lakehouse.commit_files(lakehouse.write_files(con, "s.prices", "decimals"), mode="overwrite")
    assert key_index(lakehouse, "s.prices", Layout(lookups=("price",))) is None
    assert key_index(lakehouse, "s.missing", LAYOUT) is None
    # Cells are rows times columns: 1,000 rows of four columns.
    monkeypatch.setattr(key_index_module, "INDEXED_CELLS", 4_000)
    assert key_index(lakehouse, NAME, LAYOUT) is not None
    monkeypatch.setattr(key_index_module, "INDEXED_CELLS", 4_001)
    assert key_index(lakehouse, NAME, LAYOUT) is None


def test_dropping_a_table_drops_its_index(tmp_path: Path) -> None:
    lakehouse, con = Lakehouse(tmp_path), duckdb.connect()
    create(lakehouse, con, 100)
    located(lakehouse, "id", ["k1"])
    assert list((tmp_path / "_key_index").glob("*.sqlite*"))
    lakehouse.drop(NAME)
    assert not list((tmp_path / "_key_index").glob("*.sqlite*"))
    assert NAME not in lakehouse.names()


def test_mls2_pipeline_run_indexes_the_tables_the_setting_names(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(key_index_module, "INDEXED_CELLS", math.inf)
    monkeypatch.setenv("MLS2_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MLS2_INTEGRITY_AFTER_UPDATE", "false")
    monkeypatch.setenv("MLS2_ENGINE_KEY_INDEX_CELLS", "2")
    settings = load_settings()
    land(settings, "s1", [listing(key, 1, [f"{key}1"]) for key in "abcdefghij"])
    assert CliRunner().invoke(app, ["pipeline", "run"]).exit_code == 0
    land(settings, "s2", [listing("a", 2, ["a1", "a2"], price=5)])
    result = CliRunner().invoke(app, ["pipeline", "run"])
    assert result.exit_code == 0, result.output
    [update_id] = re.findall(r"update ([0-9a-f-]{36})", result.output)[:1]
    written = {name: how[2] for name, how in planning(settings, update_id).items() if how[2]}
    assert written["qobrix_silver.property"]["located_by"] == "key index"
    assert written["reso_gold.media"]["located_by"] == "key index"
    assert sorted(row["MediaObjectID"] for row in rows(settings, "reso_gold.media")) == sorted(
        ["a2", *(f"{key}1" for key in "abcdefghij")]
    )
    assert (settings.paths.lakehouse / "_key_index" / "reso_gold.media.sqlite").exists()
