"""The key index beside each serving snapshot file: where a key's document lies, found without a SQL engine.

A record fetched by key (`Property('K')`) is one stored document. Finding its place through DuckDB
costs 0.8-0.9 ms of CPU however narrow the query (parsing, binding, planning: `SELECT 42` alone
takes 0.25 ms), most of a key lookup's time on the server. SQLite, in the standard library, finds
it in 10-20 us: `<file>.keys` holds one row per key (`key`, `at`, `size`), and the API reads it
through a read-only connection per thread.

The index and its DuckDB file are written one after the other, so each records a generation: the
DuckDB file in `GENERATION_TABLE`, in the same transaction as its rows, the index in its `meta`
table, in the same transaction as its own. A patch finding the two differing (a publish stopped
between them, or a file patched by a version that kept no index) writes the index anew rather than
patching it.
"""

import os
import sqlite3
import threading
import uuid
from contextlib import suppress
from pathlib import Path

import duckdb

from pipelines._engine.documents import DOCUMENT_AT, DOCUMENT_SIZE

GENERATION_TABLE = "__key_index"
ROWS_PER_BATCH = 100_000


def keys_of(database: Path) -> Path:
    return database.with_name(database.name + ".keys")


def index_files(index: Path) -> list[Path]:
    """`index`, then the files beside it while it is written: SQLite's rollback journal (an unfinished
    patch, rolled back when the index is next opened) and a new index being built."""
    return [index, index.with_name(index.name + "-journal"), index.with_name(index.name + "-new")]


def new_generation(con: duckdb.DuckDBPyConnection) -> str:
    """Record a new generation in the database being built (within the caller's transaction, if any)."""
    generation = uuid.uuid4().hex
    con.execute(f'CREATE OR REPLACE TABLE "{GENERATION_TABLE}" AS SELECT ?::VARCHAR AS generation', [generation])
    return generation


def recorded_generation(con: duckdb.DuckDBPyConnection) -> str | None:
    """The generation the database being built records, if any."""
    held = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() AND table_name = ?",
        [GENERATION_TABLE],
    ).fetchone()
    if not held or not held[0]:
        return None
    row = con.execute(f'SELECT generation FROM "{GENERATION_TABLE}"').fetchone()
    return row[0] if row else None


def index_generation(index: Path) -> str | None:
    """The generation `index` was last written at; None when it is missing or unreadable."""
    if not index.exists():
        return None
    try:
        connection = sqlite3.connect(index)
        try:
            row = connection.execute("SELECT generation FROM meta").fetchone()
        finally:
            connection.close()
    except sqlite3.Error:
        return None
    return row[0] if row else None


def _places(con: duckdb.DuckDBPyConnection, table: str, key: str, where: str, order: bool) -> duckdb.DuckDBPyRelation:
    sql = f'SELECT "{key}", "{DOCUMENT_AT}", "{DOCUMENT_SIZE}" FROM "{table}" WHERE {where}'
    return con.sql(f'{sql} ORDER BY "{key}"' if order else sql)


def _insert(connection: sqlite3.Connection, places: duckdb.DuckDBPyRelation, verb: str) -> None:
    for batch in places.to_arrow_reader(ROWS_PER_BATCH):
        connection.executemany(
            f"{verb} INTO places VALUES (?, ?, ?)", zip(*(c.to_pylist() for c in batch.columns), strict=True)
        )


def write_key_index(con: duckdb.DuckDBPyConnection, table: str, key: str, index: Path, generation: str) -> None:
    """`index` anew from every row of `table`: written beside it, then renamed over it."""
    _, journal, building = index_files(index)
    building.unlink(missing_ok=True)
    connection = sqlite3.connect(building)
    try:
        # Nothing to roll back to in a new file; the rename below is what makes it whole.
        connection.execute("PRAGMA journal_mode = OFF")
        connection.execute("PRAGMA synchronous = OFF")
        connection.execute("CREATE TABLE places (key TEXT PRIMARY KEY, at INTEGER, size INTEGER) WITHOUT ROWID")
        connection.execute("CREATE TABLE meta (generation TEXT)")
        _insert(connection, _places(con, table, key, "true", order=True), "INSERT")
        connection.execute("INSERT INTO meta VALUES (?)", (generation,))
        connection.commit()
    finally:
        connection.close()
    with open(building, "rb") as file:
        os.fsync(file.fileno())
    journal.unlink(missing_ok=True)
    os.replace(building, index)


def update_key_index(
    con: duckdb.DuckDBPyConnection,
    table: str,
    key: str,
    index: Path,
    generation: str,
    *,
    previous: str | None,
    removed: str,
    written_from: int,
) -> None:
    """Bring `index` to `table`, just patched from generation `previous` to `generation`: in one
    SQLite transaction drop the keys of relation `removed`, then place every row whose document lies
    at or after `written_from` (those the patch wrote). Written anew when the index is not at
    `previous`, or cannot be patched."""
    if previous is not None and index_generation(index) == previous:
        with suppress(sqlite3.Error):
            connection = sqlite3.connect(index)
            try:
                with connection:
                    gone = con.execute(f"SELECT * FROM {removed}").fetchall()
                    connection.executemany("DELETE FROM places WHERE key = ?", gone)
                    written = _places(con, table, key, f'"{DOCUMENT_AT}" >= {int(written_from)}', order=False)
                    _insert(connection, written, "REPLACE")
                    connection.execute("UPDATE meta SET generation = ?", (generation,))
                return
            finally:
                connection.close()
    write_key_index(con, table, key, index, generation)


class KeyPlaces:
    """The key indexes of one snapshot, read through a connection per thread and table (a SQLite
    connection is not shared between threads); they close when the snapshot is let go of."""

    def __init__(self, files: dict[str, Path]) -> None:
        self._files = files
        self._local = threading.local()

    def __contains__(self, name: str) -> bool:
        return name in self._files

    def place(self, name: str, key: str) -> tuple[int, int] | None:
        """Where the document of table `name`'s row `key` lies (offset, size), or None for no such row."""
        connections = self._local.__dict__.setdefault("connections", {})
        connection = connections.get(name)
        if connection is None:
            connection = sqlite3.connect(f"{self._files[name].as_uri()}?mode=ro", uri=True)
            connections[name] = connection
        return connection.execute("SELECT at, size FROM places WHERE key = ?", (key,)).fetchone()
