"""Where a large Delta table's rows of some key values lie, found without reading the table's files.

A merge-on-read marks deleted the rows a change replaces, by their data file and position. Finding
them by scanning the key column of every data file costs the size of the table at every update.
This index is a SQLite B-tree of each row's indexed values (and a few carried ones, such as the
sequence AUTO CDC compares) with its data file and position, kept beside the table. Before each
lookup it is brought to the table's version from the table's own files: the rows of files it does
not know are read, the rows of files the table no longer has are dropped, and the positions of new
deletion vectors are removed. It is a cache of the table's files: a crash at any point, a
compaction, an overwrite or another writer leave it to be brought up to date, never wrong.
"""

import os
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable
from pyroaring import BitMap64

from pipelines._engine.deletion_vectors import positions_array
from pipelines._engine.delta_log import deletion_vectors, table_root
from pipelines._engine.lakehouse import FILE_COLUMN, KEY_INDEX_FOLDER, ROW_COLUMN, Lakehouse

INDEXED_ROWS = 2_000_000
"""Tables of at least this many rows are looked up through an index, unless the lakehouse says otherwise
(MLS2_ENGINE_KEY_INDEX_ROWS); below it, scanning the key column costs less than keeping the index
(measured in benchmarks/RESULTS.md)."""
REBUILD_FRACTION = 0.5
"""When files the table no longer has held at least this fraction of the indexed rows (an overwrite),
the index is built anew rather than emptied row by row."""
CACHE_KIB = 262_144
"""SQLite's page cache per connection: building an index of millions of rows sorts in memory."""
LOOKUP_BATCH = 10_000
"""Values sent to SQLite per statement when looking up."""


@dataclass(frozen=True)
class Layout:
    """What an index holds: the columns it looks rows up by, then the columns it only carries."""

    lookups: tuple[str, ...]
    carried: tuple[str, ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        return self.lookups + self.carried

    def signature(self, types: dict[str, pa.DataType]) -> str:
        return "\n".join(f"{column}:{types[column]}" for column in self.columns)


def _storable(kind: pa.DataType) -> bool:
    """Whether SQLite holds values of `kind` exactly and compares them as the engine does: text and
    integers as they are, timestamps and dates as their integer count."""
    return (
        pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_integer(kind)
        or pa.types.is_timestamp(kind)
        or pa.types.is_date(kind)
    )


def _to_sqlite(values: pa.Array) -> list:
    kind = values.type
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        values = values.cast(pa.int64() if pa.types.is_timestamp(kind) else pa.int32())
    return values.to_pylist()


def _from_sqlite(values: list, kind: pa.DataType) -> pa.Array:
    if pa.types.is_timestamp(kind):
        return pa.array(values, pa.int64()).cast(kind)
    if pa.types.is_date(kind):
        return pa.array(values, pa.int32()).cast(kind)
    return pa.array(values, kind)


def key_index(lakehouse: Lakehouse, name: str, layout: Layout) -> "KeyIndex | None":
    """The index of a table large enough to need one, whose columns SQLite can hold; else None (scan)."""
    table = lakehouse.table(name)
    threshold = INDEXED_ROWS if lakehouse.key_index_rows is None else lakehouse.key_index_rows
    if table is None or lakehouse.row_count(name) < threshold:
        return None
    types = {field.name: field.type for field in pa.schema(table.schema().to_arrow())}
    if not all(column in types and _storable(types[column]) for column in layout.columns):
        return None
    return KeyIndex(lakehouse.root / KEY_INDEX_FOLDER / f"{name}.sqlite", layout, table)


class KeyIndex:
    """The index of one version of one table (`table`): `locate` brings it up to that version first."""

    def __init__(self, path: Path, layout: Layout, table: DeltaTable) -> None:
        self.path, self.layout, self.table = path, layout, table
        self.root = table_root(table)
        self.types = {field.name: field.type for field in pa.schema(table.schema().to_arrow())}
        self.reconciled = False
        """Whether the index was brought to `table` (then later lookups need not look at its files again)."""

    def locate(self, column: str, values: pa.Array) -> pa.Table:
        """The table's live rows whose `column` (a lookup column) holds one of `values`: their data file
        (as `file_uris` names it), position, and the layout's columns. NULL matches nothing."""
        if column not in self.layout.lookups:
            raise ValueError(f"{self.path.name} looks rows up by {', '.join(self.layout.lookups)}, not {column}")
        with closing(self._connect()) as db:
            if not self.reconciled:
                self._reconcile(db)
                self.reconciled = True
            wanted = [value for value in _to_sqlite(values.cast(self.types[column])) if value is not None]
            found: list[tuple] = []
            selected = ", ".join(f"r.c{i}" for i in range(len(self.layout.columns)))
            position = self.layout.lookups.index(column)
            for start in range(0, len(wanted), LOOKUP_BATCH):
                batch = wanted[start : start + LOOKUP_BATCH]
                found += db.execute(
                    f"SELECT f.path, r.row, {selected} FROM rows r JOIN files f ON f.id = r.file "
                    f"WHERE r.c{position} IN (SELECT value FROM json_each(?))",
                    (orjson.dumps(batch).decode(),),
                ).fetchall()
        columns = list(zip(*found, strict=True)) if found else [[] for _ in range(2 + len(self.layout.columns))]
        data = {
            FILE_COLUMN: pa.array([str(self.root / path) for path in columns[0]], pa.string()),
            ROW_COLUMN: pa.array(columns[1], pa.int64()),
        }
        for i, name in enumerate(self.layout.columns):
            data[name] = _from_sqlite(list(columns[2 + i]), self.types[name])
        return pa.table(data)

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None)
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        return db

    def _reconcile(self, db: sqlite3.Connection) -> None:
        """Bring the index to the table's files, in one transaction (a crash leaves it as it was)."""
        signature = self.layout.signature(self.types)
        held = self._meta(db)
        if held.get("signature") != signature:
            self._create(db, signature)
        current = {os.path.relpath(uri, self.root): uri for uri in self.table.file_uris()}
        known = {path: (file_id, rows) for file_id, path, rows in db.execute("SELECT id, path, live FROM files")}
        gone = [path for path in known if path not in current]
        indexed = sum(rows for _, rows in known.values())
        if gone and sum(known[path][1] for path in gone) >= indexed * REBUILD_FRACTION:
            self._create(db, signature)
            known, gone = {}, []
        vectors = deletion_vectors(self.table)
        db.execute("BEGIN IMMEDIATE")
        try:
            for path in gone:
                file_id = known.pop(path)[0]
                db.execute("DELETE FROM rows WHERE file = ?", (file_id,))
                db.execute("DELETE FROM files WHERE id = ?", (file_id,))
            for path in current:
                if path not in known:
                    known[path] = (self._add_file(db, path), None)
            applied = dict(db.execute("SELECT id, vector FROM files").fetchall())
            for path, (file_id, _) in known.items():
                vector = vectors.get(path)
                if vector is None or applied.get(file_id) == vector.unique_id:
                    continue
                deleted = vector.read(self.root)
                before = db.execute("SELECT deleted FROM files WHERE id = ?", (file_id,)).fetchone()[0]
                fresh = deleted - BitMap64.deserialize(before) if before else deleted
                db.executemany(
                    "DELETE FROM rows WHERE file = ? AND row = ?",
                    ((file_id, int(row)) for row in positions_array(fresh)),
                )
                db.execute(
                    "UPDATE files SET vector = ?, deleted = ?, live = live - ? WHERE id = ?",
                    (vector.unique_id, deleted.serialize(), len(fresh), file_id),
                )
            for i in range(len(self.layout.lookups)):
                # Built after the rows when the index is new: sorting once is faster than inserting in key order.
                db.execute(f"CREATE INDEX IF NOT EXISTS rows_c{i} ON rows (c{i})")
            db.execute("UPDATE meta SET value = ? WHERE name = 'version'", (str(self.table.version()),))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _add_file(self, db: sqlite3.Connection, path: str) -> int:
        """Index every row of a data file (its deletion vector is applied after); returns its id."""
        parquet = pq.ParquetFile(self.root / path)
        present = set(parquet.schema_arrow.names)
        read = parquet.read(columns=[column for column in self.layout.columns if column in present])
        rows = read.num_rows
        values = [
            _to_sqlite(
                read.column(column).combine_chunks().cast(self.types[column])
                if column in present
                else pa.nulls(rows, self.types[column])
            )
            for column in self.layout.columns
        ]
        file_id = db.execute("INSERT INTO files (path, live) VALUES (?, ?)", (path, rows)).lastrowid
        marks = ", ".join("?" * (2 + len(values)))
        db.executemany(f"INSERT INTO rows VALUES ({marks})", zip([file_id] * rows, range(rows), *values, strict=True))
        return file_id

    def _meta(self, db: sqlite3.Connection) -> dict[str, str]:
        try:
            return dict(db.execute("SELECT name, value FROM meta").fetchall())
        except sqlite3.OperationalError:
            return {}

    def _create(self, db: sqlite3.Connection, signature: str) -> None:
        """An empty index of the layout (whatever was there is dropped)."""
        columns = ", ".join(f"c{i}" for i in range(len(self.layout.columns)))
        db.executescript(
            "BEGIN; DROP TABLE IF EXISTS meta; DROP TABLE IF EXISTS files; DROP TABLE IF EXISTS rows;"
            "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT);"
            "CREATE TABLE files (id INTEGER PRIMARY KEY, path TEXT UNIQUE NOT NULL, live INTEGER NOT NULL,"
            " vector TEXT, deleted BLOB);"
            f"CREATE TABLE rows (file INTEGER NOT NULL, row INTEGER NOT NULL, {columns},"
            " PRIMARY KEY (file, row)) WITHOUT ROWID; COMMIT;"
        )
        db.execute("INSERT INTO meta VALUES ('signature', ?), ('version', '')", (signature,))
