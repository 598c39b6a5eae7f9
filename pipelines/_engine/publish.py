"""Publishing gold for serving: a DuckDB file built from the gold Delta tables, swapped in atomically.

The API reads `CURRENT.json` to find the snapshot; a new snapshot is complete on disk
before the pointer moves, so readers never see half an update.

Serving reads whole records by key, which a column store does slowly (reading one row
decompresses a block of every column: 300 for Property), so each row also carries `__document`:
the record already written as OData JSON (timestamps in UTC with `Z`, decimals as JSON numbers),
read as one column. Rows are stored in the order they are looked up by: the
column `$expand` follows into the table (a listing's media side by side), else
`ModificationTimestamp` (replication pages touch few row groups). The key and every lookup
column are indexed. Each row also carries `__hash`, so the next publish, which starts from a
copy of this snapshot, rewrites only the rows whose hash changed.
"""

import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import orjson

from conf.files import write_atomically
from pipelines._engine.lakehouse import Lakehouse, register_delta
from pipelines._engine.sql import string_literal
from pipelines.gold import DOCUMENT_COLUMN

KEPT_SNAPSHOTS = 2
HASH_COLUMN = "__hash"
SERVING_DATABASE = "serving_snapshot"
UNSUITED_COMPRESSION = "dict_fsst,zstd"
"""Compression methods the snapshot does without. DuckDB 2.0 stores long strings as ZSTD, and reading
one row of it decompresses a whole vector: a Property document took 9 ms to read by key, 0.7 ms
stored plain (in about ten times the space on the sandbox's repetitive records). Its `dict_fsst`
analysis of the document column took 5x the rest of the build (13.8 s -> 2.7 s for 20,000 listings)."""
WHOLE_SECONDS = "%Y-%m-%dT%H:%M:%SZ"
MICROSECONDS = "%Y-%m-%dT%H:%M:%S.%fZ"


def read_pointer(pointer: Path) -> dict | None:
    return orjson.loads(pointer.read_bytes()) if pointer.exists() else None


def _json_value(name: str, kind: str) -> str:
    column = f'"{name}"'
    if kind.startswith("TIMESTAMP"):
        return (
            f"CASE WHEN microsecond({column}) % 1000000 = 0 THEN strftime({column}, '{WHOLE_SECONDS}') "
            f"ELSE strftime({column}, '{MICROSECONDS}') END"
        )
    if kind.startswith("DECIMAL"):
        return f"CAST({column} AS DOUBLE)"
    return column


def document_sql(columns: list[tuple[str, str]]) -> str:
    """SQL writing a row as its OData JSON object, fields in column order."""
    fields = ", ".join(f'"{name}" := {_json_value(name, kind)}' for name, kind in columns)
    return f"CAST(to_json(struct_pack({fields})) AS VARCHAR)"


def _columns(con: duckdb.DuckDBPyConnection, relation: str) -> list[tuple[str, str]]:
    return [(row[0], row[1]) for row in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()]


def _served_rows(source: str, columns: list[tuple[str, str]]) -> str:
    """`source`'s rows with their document and a hash of the row (what tells a changed row next time)."""
    return (
        f'SELECT *, {document_sql(columns)} AS "{DOCUMENT_COLUMN}", hash(source_row) AS "{HASH_COLUMN}" '
        f"FROM {source} source_row"
    )


def _in_lookup_order(source: str, key: str, lookups: Sequence[str], columns: list[tuple[str, str]]) -> str:
    """`source` sorted in the order rows are looked up by. Sorted before documents are added: sorting
    rows that carry them needed memory in proportion to the table (400 MB failed at 20,000 listings)."""
    order = ", ".join(f'"{c}"' for c in (*lookups[:1], "ModificationTimestamp", key) if c in dict(columns))
    return f"(SELECT * FROM {source} ORDER BY {order})"


def create_serving_table(
    con: duckdb.DuckDBPyConnection, name: str, source: str, key: str, lookups: Sequence[str] = ()
) -> None:
    """`name` from the relation `source`: every column plus `__document` and `__hash`, stored in
    lookup order, indexed."""
    columns = _columns(con, source)
    con.execute(f'CREATE TABLE "{name}" AS {_served_rows(_in_lookup_order(source, key, lookups, columns), columns)}')
    con.execute(f'CREATE UNIQUE INDEX "{name}_key" ON "{name}" ("{key}")')
    for column in lookups:
        con.execute(f'CREATE INDEX "{name}_{column}" ON "{name}" ("{column}")')


def patch_serving_table(
    con: duckdb.DuckDBPyConnection, name: str, source: str, key: str, lookups: Sequence[str] = ()
) -> tuple[int, int] | None:
    """Bring the existing `name` up to `source`, rewriting only rows that changed (by key and row
    hash): returns (rows removed, rows written), or None when `name` is absent or its columns
    differ (build it anew)."""
    columns = _columns(con, source)
    stored = _columns(con, f'"{name}"') if _has_table(con, name) else None
    if stored != [*columns, (DOCUMENT_COLUMN, "VARCHAR"), (HASH_COLUMN, "UBIGINT")]:
        return None
    quoted = f'"{key}"'
    same = f's.{quoted} = i.{quoted} AND s."{HASH_COLUMN}" = i."{HASH_COLUMN}"'
    con.execute(
        f'CREATE OR REPLACE TEMP TABLE incoming AS SELECT {quoted}, hash(source_row) AS "{HASH_COLUMN}" '
        f"FROM {source} source_row"
    )
    con.execute(f'CREATE OR REPLACE TEMP TABLE stale AS SELECT {quoted} FROM "{name}" s ANTI JOIN incoming i ON {same}')
    con.execute(f'CREATE OR REPLACE TEMP TABLE fresh AS SELECT {quoted} FROM incoming i ANTI JOIN "{name}" s ON {same}')
    [(removed, written)] = con.execute("SELECT (SELECT count(*) FROM stale), (SELECT count(*) FROM fresh)").fetchall()
    if removed:
        con.execute(f'DELETE FROM "{name}" WHERE {quoted} IN (SELECT {quoted} FROM stale)')
    if written:
        rows = f"(SELECT * FROM {source} WHERE {quoted} IN (SELECT {quoted} FROM fresh))"
        con.execute(
            f'INSERT INTO "{name}" BY NAME {_served_rows(_in_lookup_order(rows, key, lookups, columns), columns)}'
        )
    con.execute("DROP TABLE incoming; DROP TABLE stale; DROP TABLE fresh")
    return removed, written


def _has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Whether the database being built (the connection's default) has table `name`."""
    [(count,)] = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = ? AND database_name = current_database()", [name]
    ).fetchall()
    return bool(count)


@contextmanager
def snapshot_database(
    path: Path, connection: duckdb.DuckDBPyConnection | None = None, config: dict[str, str] | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """`path` attached as the default database of `connection` (or of a new in-memory one with
    DuckDB `config`), in UTC, with storage chosen for reading rows by key; checkpointed and
    detached at the end."""
    con = connection or duckdb.connect(config=config or {})
    [(home,)] = con.execute("SELECT current_database()").fetchall()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(f"SET disabled_compression_methods = '{UNSUITED_COMPRESSION}'")
        con.execute(f"ATTACH {string_literal(str(path))} AS {SERVING_DATABASE}")
        con.execute(f"USE {SERVING_DATABASE}")
        yield con
        con.execute(f"CHECKPOINT {SERVING_DATABASE}")
    finally:
        con.execute(f"USE {home}")
        con.execute(f"DETACH DATABASE IF EXISTS {SERVING_DATABASE}")
        con.execute("RESET disabled_compression_methods")
        if connection is None:
            con.close()


def publish_snapshot(
    lakehouse: Lakehouse,
    pointer_path: Path,
    tables: dict[str, tuple[str, ...]],
    update_id: str,
    config: dict[str, str] | None = None,
    connection: duckdb.DuckDBPyConnection | None = None,
) -> dict:
    """Build `gold-<update>.duckdb` from the served gold tables (name -> key, then lookup columns),
    then point the pointer at it. Built through `connection` (the engine's, so publishing stays
    within its memory limit rather than adding a second one) or a new one with DuckDB `config`.

    Built on a copy of the snapshot served now, when there is one: a table whose gold files are
    unchanged is kept as it is, a changed one is patched row by row (documents are written only
    for rows that changed), a table whose columns changed is built anew. The pointer's `tables`
    says which happened to each.
    """
    snapshots = pointer_path.parent
    snapshots.mkdir(parents=True, exist_ok=True)
    file_name = f"gold-{update_id}.duckdb"
    building = snapshots / f".{file_name}.building"
    _discard(building)
    previous = read_pointer(pointer_path)
    base = snapshots / previous["file"] if previous else None
    if base is not None and base.exists():
        shutil.copyfile(base, building)
        try:
            built = _fill(building, lakehouse, tables, previous.get("fingerprints", {}), connection, config)
        except duckdb.Error:
            # The served snapshot cannot be patched (damaged, or unreadable by this DuckDB): build
            # from nothing, so a rerun converges; a real fault fails again there.
            _discard(building)
            built = _fill(building, lakehouse, tables, {}, connection, config)
    else:
        built = _fill(building, lakehouse, tables, {}, connection, config)
    versions, fingerprints, outcome = built
    os.replace(building, snapshots / file_name)
    pointer = write_pointer(pointer_path, file_name, update_id, versions, fingerprints, outcome)
    _remove_old_snapshots(snapshots, keep=file_name)
    return pointer


def _discard(database: Path) -> None:
    """Remove a DuckDB file and its write-ahead log."""
    database.unlink(missing_ok=True)
    database.with_name(database.name + ".wal").unlink(missing_ok=True)


def _fill(
    building: Path,
    lakehouse: Lakehouse,
    tables: dict[str, tuple[str, ...]],
    served: dict[str, str],
    connection: duckdb.DuckDBPyConnection | None,
    config: dict[str, str] | None,
) -> tuple[dict[str, int], dict[str, str], dict[str, str]]:
    """Bring the file `building` to the gold tables; `served` has the fingerprints of what it holds.
    Returns the tables' versions, their fingerprints, and what was done to each."""
    versions, fingerprints, outcome = {}, {}, {}
    with snapshot_database(building, connection, config) as con:
        for qualified, (key, *lookups) in tables.items():
            table = lakehouse.table(qualified)
            name = qualified.split(".", 1)[1]
            if table is None:
                con.execute(f'DROP TABLE IF EXISTS "{name}"')
                continue
            versions[qualified], fingerprints[qualified] = table.version(), lakehouse.fingerprint(qualified)
            if served.get(qualified) == fingerprints[qualified] and _has_table(con, name):
                outcome[name] = "unchanged"
                continue
            register_delta(con, "gold_source", table)
            patched = patch_serving_table(con, name, "gold_source", key, lookups)
            if patched is None:
                con.execute(f'DROP TABLE IF EXISTS "{name}"')
                create_serving_table(con, name, "gold_source", key, lookups)
                outcome[name] = "built"
            else:
                outcome[name] = f"patched: {patched[0]} rows removed, {patched[1]} written"
            con.execute("DROP VIEW gold_source")
    return versions, fingerprints, outcome


def write_pointer(
    pointer_path: Path,
    file_name: str,
    update_id: str,
    versions: dict[str, int],
    fingerprints: dict[str, str] | None = None,
    tables: dict[str, str] | None = None,
) -> dict:
    """Point readers at the snapshot `file_name` (beside the pointer), atomically. `fingerprints` are
    the gold tables' (what the next publish compares), `tables` what this publish did to each."""
    pointer = {
        "file": file_name,
        "update_id": update_id,
        "published_at": datetime.now(UTC).isoformat(),
        "versions": versions,
        "fingerprints": fingerprints or {},
        "tables": tables or {},
    }
    write_atomically(pointer_path, orjson.dumps(pointer, option=orjson.OPT_INDENT_2))
    return pointer


def snapshot_file(pointer_path: Path) -> Path | None:
    """The snapshot the pointer names, if any."""
    pointer = read_pointer(pointer_path)
    return None if pointer is None else pointer_path.parent / pointer["file"]


def _remove_old_snapshots(snapshots: Path, *, keep: str) -> None:
    """Keep the new snapshot and the one before it (readers may still hold it open)."""
    older = sorted((p for p in snapshots.glob("gold-*.duckdb") if p.name != keep), key=lambda p: p.stat().st_mtime)
    for path in older[: max(0, len(older) - (KEPT_SNAPSHOTS - 1))]:
        path.unlink(missing_ok=True)
