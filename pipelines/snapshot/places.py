"""The places index beside each serving snapshot file: where documents lie, found without a SQL engine.

A record fetched by key (`Property('K')`) is one stored document, and a plain `$expand=Media` is one
run of documents per listing. Finding either through DuckDB costs a query: for a key, parsing,
binding and planning however narrow the query (`SELECT 42` alone pays for them), and for a page's
100 listings a scan of every run (an IN list is not looked up in DuckDB's index, so the scan grows
with the table). SQLite, in the standard library, finds a key in a small fraction of that time.
So `<file>.places` holds a table `places` (`key`, `at`, `size`: every row's document) and, for a
table `$expand` follows a column into, `runs` (`value`, `at`, `size`: the run of documents of the
rows sharing a value of that column, NULL where they do not lie in one piece); the API reads it
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
from collections.abc import Sequence
from pathlib import Path

import duckdb

GENERATION_TABLE = "__places"
ROWS_PER_BATCH = 100_000
VALUES_PER_QUERY = 500
"""Runs looked up per SQLite statement (its limit on bound values is 32,766)."""
TABLES = (
    # Keys and values untyped (no affinity): what is looked up matches what was stored, type and all.
    "CREATE TABLE places (key PRIMARY KEY, at INTEGER, size INTEGER) WITHOUT ROWID",
    "CREATE TABLE runs (value PRIMARY KEY, at INTEGER, size INTEGER) WITHOUT ROWID",
    "CREATE TABLE meta (generation TEXT, runs_column TEXT)",
)


def places_of(database: Path) -> Path:
    return database.with_name(database.name + ".places")


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
    [(held,)] = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() AND table_name = ?",
        [GENERATION_TABLE],
    ).fetchall()
    if not held:
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


def _insert(connection: sqlite3.Connection, table: str, rows: str, con: duckdb.DuckDBPyConnection) -> None:
    """The rows of DuckDB query `rows` (three columns) into SQLite `table`, replacing rows of the same key."""
    for batch in con.sql(rows).to_arrow_reader(ROWS_PER_BATCH):
        values = zip(*(column.to_pylist() for column in batch.columns), strict=True)
        connection.executemany(f"REPLACE INTO {table} VALUES (?, ?, ?)", values)


def write_places(
    con: duckdb.DuckDBPyConnection, index: Path, generation: str, places: str, runs: tuple[str, str] | None
) -> None:
    """`index` anew: written beside it from the DuckDB queries `places` (key, at, size, in key order
    for speed) and `runs` (its column, and a query of value, at, size), then renamed over it."""
    _, journal, building = index_files(index)
    building.unlink(missing_ok=True)
    connection = sqlite3.connect(building)
    try:
        # Nothing to roll back to in a new file; the rename below is what makes it whole.
        connection.execute("PRAGMA journal_mode = OFF")
        connection.execute("PRAGMA synchronous = OFF")
        for table in TABLES:
            connection.execute(table)
        _insert(connection, "places", places, con)
        if runs is not None:
            _insert(connection, "runs", runs[1], con)
        connection.execute("INSERT INTO meta VALUES (?, ?)", (generation, runs[0] if runs else None))
        connection.commit()
    finally:
        connection.close()
    with open(building, "rb") as file:
        os.fsync(file.fileno())
    journal.unlink(missing_ok=True)
    os.replace(building, index)


def patch_places(
    con: duckdb.DuckDBPyConnection,
    index: Path,
    generation: str,
    changes: Sequence[tuple[str, str, str]],
) -> None:
    """Bring `index` to `generation` in one SQLite transaction: per (table, gone, written) of
    `changes`, drop the keys DuckDB query `gone` names, then insert the rows of `written`."""
    connection = sqlite3.connect(index)
    try:
        with connection:
            for table, gone, written in changes:
                column = "key" if table == "places" else "value"
                removed = con.execute(gone).fetchall()
                connection.executemany(f"DELETE FROM {table} WHERE {column} = ?", removed)
                _insert(connection, table, written, con)
            connection.execute("UPDATE meta SET generation = ?", (generation,))
    finally:
        connection.close()


class DocumentPlaces:
    """The places indexes of one snapshot, read through a connection per thread and table (a SQLite
    connection is not shared between threads); they close when the snapshot is let go of."""

    def __init__(self, files: dict[str, Path]) -> None:
        self._files = files
        self._local = threading.local()
        self._runs_columns: dict[str, str | None] = {}

    def __contains__(self, name: str) -> bool:
        return name in self._files

    def _connection(self, name: str) -> sqlite3.Connection:
        connections = self._local.__dict__.setdefault("connections", {})
        connection = connections.get(name)
        if connection is None:
            connection = sqlite3.connect(f"{self._files[name].as_uri()}?mode=ro", uri=True)
            connections[name] = connection
        return connection

    def place(self, name: str, key: str) -> tuple[int, int] | None:
        """Where the document of table `name`'s row `key` lies (offset, size), or None for no such row."""
        return self._connection(name).execute("SELECT at, size FROM places WHERE key = ?", (key,)).fetchone()

    def runs_column(self, name: str) -> str | None:
        """The column table `name`'s runs share a value of, if it has runs."""
        if name not in self._runs_columns:
            [(column,)] = self._connection(name).execute("SELECT runs_column FROM meta").fetchall()
            self._runs_columns[name] = column
        return self._runs_columns[name]

    def runs(self, name: str, values: Sequence) -> list[tuple]:
        """(value, offset, size) of each run of table `name` among `values` (offset and size NULL for
        a run not in one piece); a value no row has is left out."""
        connection, found = self._connection(name), []
        for start in range(0, len(values), VALUES_PER_QUERY):
            chunk = values[start : start + VALUES_PER_QUERY]
            marks = ", ".join("?" * len(chunk))
            found += connection.execute(f"SELECT value, at, size FROM runs WHERE value IN ({marks})", chunk).fetchall()
        return found
