"""Where a large Delta table's rows of some key values lie, found without reading the table's files.

A merge-on-read marks deleted the rows a change replaces, by their data file and position. Finding
them by scanning the key column of every data file costs the size of the table at every update.
This index is a SQLite B-tree per data file of each row's indexed values (and a few carried ones,
such as the sequence AUTO CDC compares) by position, kept beside the table. Before the first lookup
of a version it is brought to the table's files: files it does not know are indexed, those the table
no longer has are dropped; rows deletion vectors delete are left out at lookup. It is a cache of the
table's files: a crash at any point, a compaction, an overwrite or another writer leave it to be
brought up to date, never wrong.
"""

import os
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable

from conf.settings import Settings
from pipelines._engine import arrow
from pipelines._engine.delta_log import deletion_vectors, table_root
from pipelines._engine.lakehouse import FILE_COLUMN, ROW_COLUMN, Lakehouse, remove_database

INDEXED_CELLS: int = Settings.model_fields["mls2_engine_key_index_cells"].default
"""Tables of at least this many cells (rows times top-level columns) are looked up through an index, unless the
lakehouse says otherwise (MLS2_ENGINE_KEY_INDEX_CELLS, whose default this is). A scan of a key column
reads every row's key and every row group's footer, whose size grows with the table's columns: a
wide table of a million rows (Property) costs far more to scan than a narrow table of more rows
(Media). Below it a scan costs about what a lookup does, and the index's build and disk are not
worth it (benchmarks/RESULTS.md)."""
FORMAT = "one table per data file"
"""How an index lays out its rows, part of its signature: a file of another format is built anew."""
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
        """What an index file must have been written for to be read: this format, these columns, of
        these types (a column retyped, or another layout, and the file is built anew)."""
        return "\n".join([FORMAT, *(f"{column}:{types[column]}" for column in self.columns)])


def _storable(kind: pa.DataType) -> bool:
    """Whether SQLite holds values of `kind` exactly and compares them as the engine does: text and
    integers as they are, timestamps and dates as their integer count."""
    return (
        pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or (pa.types.is_integer(kind) and kind != pa.uint64())  # SQLite's integers are signed 64-bit
        or pa.types.is_timestamp(kind)
        or pa.types.is_date(kind)
    )


def _counted(kind: pa.DataType) -> pa.DataType | None:
    """The integer type a timestamp or date type is a count of, as SQLite holds it; None for others."""
    if pa.types.is_timestamp(kind) or pa.types.is_date64(kind):
        return pa.int64()
    return pa.int32() if pa.types.is_date32(kind) else None


def _to_sqlite(values: pa.Array | pa.ChunkedArray) -> list:
    """Values as SQLite holds them: timestamps and dates as their integer count since the epoch (a
    view of their buffers, not a cast: an update loads no Arrow compute function)."""
    counted = _counted(values.type)
    if counted is None:
        return values.to_pylist()
    chunks = values.chunks if isinstance(values, pa.ChunkedArray) else [values]
    return [value for chunk in chunks for value in chunk.view(counted).to_pylist()]


def _from_sqlite(values: list, kind: pa.DataType) -> pa.Array:
    """`_to_sqlite`'s values back as Arrow values of `kind`."""
    counted = _counted(kind)
    return arrow.array(values, kind) if counted is None else arrow.array(values, counted).view(kind)


def key_index(lakehouse: Lakehouse, name: str, layout: Layout) -> "KeyIndex | None":
    """The index of a table large enough to need one, whose columns SQLite can hold; else None (scan)."""
    table = lakehouse.table(name)
    threshold = INDEXED_CELLS if lakehouse.key_index_cells is None else lakehouse.key_index_cells
    if table is None or lakehouse.row_count(name) * len(table.schema().fields) < threshold:
        return None
    index = KeyIndex(lakehouse.key_index_path(name), layout, table)
    if not all(column in index.types and _storable(index.types[column]) for column in layout.columns):
        return None
    return index


class KeyIndex:
    """The index of one version of one table (`table`): `locate` brings it up to that version first.

    Each data file's rows are indexed in a table of their own, written once: a data file never changes,
    so a merge adds the index of the file it wrote and drops those of the files it removed, and
    nothing else is written. Rows a deletion vector deleted stay in their file's index, as they stay in
    the file, and are left out at lookup (a compaction rewrites files mostly deleted)."""

    def __init__(self, path: Path, layout: Layout, table: DeltaTable) -> None:
        self.path, self.layout, self.table = path, layout, table
        self.root = table_root(table)
        self.types = {field.name: field.type for field in pa.schema(table.schema().to_arrow())}
        self.files: dict[str, int] | None = None
        """Each data file of `table` by path relative to it, with the id of its index table, once brought
        up to date (later lookups need not look at the table's files again)."""
        self.vectors = deletion_vectors(table)
        """The deletion vector of each data file of `table` that has one."""

    def locate(self, column: str, values: pa.Array | pa.ChunkedArray) -> pa.Table:
        """The table's live rows whose `column` (a lookup column) holds one of `values`: their data file
        (as `file_uris` names it), position, and the layout's columns. NULL matches nothing."""
        if column not in self.layout.lookups:
            raise ValueError(f"{self.path.name} looks rows up by {', '.join(self.layout.lookups)}, not {column}")
        wanted = [value for value in _to_sqlite(arrow.conformed_array(values, self.types[column])) if value is not None]
        batches = [
            orjson.dumps(wanted[start : start + LOOKUP_BATCH]).decode() for start in range(0, len(wanted), LOOKUP_BATCH)
        ]
        position = self.layout.lookups.index(column)
        selected = ", ".join(f"c{i}" for i in range(len(self.layout.columns)))
        found: list[tuple] = []
        if self.files is None:
            self.files = self._reconcile()
        with closing(self._connect()) as db:
            for path, file_id in self.files.items():
                rows: list[tuple] = []
                for batch in batches:
                    rows += db.execute(
                        f"SELECT row, {selected} FROM file_{file_id} "
                        f"WHERE c{position} IN (SELECT value FROM json_each(?))",
                        (batch,),
                    ).fetchall()
                if rows and path in self.vectors:
                    deleted = self.vectors[path].read(self.root)
                    rows = [row for row in rows if row[0] not in deleted]
                uri = str(self.root / path)
                found += [(uri, *row) for row in rows]
        columns = list(zip(*found, strict=True)) if found else [[] for _ in range(2 + len(self.layout.columns))]
        arrays = [arrow.array(columns[0], pa.string()), arrow.array(columns[1], pa.int64())]
        arrays += [_from_sqlite(list(columns[2 + i]), self.types[name]) for i, name in enumerate(self.layout.columns)]
        return pa.Table.from_arrays(arrays, names=[FILE_COLUMN, ROW_COLUMN, *self.layout.columns])

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None)
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        return db

    def _reconcile(self) -> dict[str, int]:
        """Index the table's data files the index does not hold and drop those the table no longer has,
        each file in a transaction of its own (a crash loses at most the file being indexed). An index
        of another signature, or holding none of the table's files (the table was written anew), or
        not a database, is replaced by a new file: removing one is faster than dropping its tables.
        Returns the table's files with their index tables."""
        signature = self.layout.signature(self.types)
        current = [os.path.relpath(uri, self.root) for uri in self.table.file_uris()]
        try:
            with closing(self._connect()) as db:
                known = self._known(db, signature)
        except sqlite3.DatabaseError as error:
            if "not a database" not in str(error) and "malformed" not in str(error):
                raise
            known = None
        if known is None or (known and not set(known) & set(current)):
            remove_database(self.path)
            known = None
        with closing(self._connect()) as db:
            if known is None:
                self._create(db, signature)
                known = {}
            for path in set(known) - set(current):
                file_id = known.pop(path)
                with _transaction(db):
                    db.execute(f"DROP TABLE file_{file_id}")
                    db.execute("DELETE FROM files WHERE id = ?", (file_id,))
            for path in current:
                if path not in known:
                    known[path] = self._add_file(db, path)
        return {path: known[path] for path in current}

    def _add_file(self, db: sqlite3.Connection, path: str) -> int:
        """Index every row of a data file in a table of its own, a row group at a time; returns its id."""
        parquet = pq.ParquetFile(self.root / path)
        present = set(parquet.schema_arrow.names)
        read = [column for column in self.layout.columns if column in present]
        columns = ", ".join(f"c{i}" for i in range(len(self.layout.columns)))
        marks = ", ".join("?" * (1 + len(self.layout.columns)))
        with _transaction(db):
            file_id = db.execute("INSERT INTO files (path) VALUES (?)", (path,)).lastrowid
            db.execute(f"CREATE TABLE file_{file_id} (row INTEGER PRIMARY KEY, {columns})")
            start = 0
            for batch in parquet.iter_batches(columns=read):
                values = [
                    _to_sqlite(
                        arrow.conformed_array(batch.column(column), self.types[column])
                        if column in present
                        else pa.nulls(batch.num_rows, self.types[column])
                    )
                    for column in self.layout.columns
                ]
                rows = range(start, start + batch.num_rows)
                db.executemany(f"INSERT INTO file_{file_id} VALUES ({marks})", zip(rows, *values, strict=True))
                start += batch.num_rows
            for i in range(len(self.layout.lookups)):
                db.execute(f"CREATE INDEX file_{file_id}_c{i} ON file_{file_id} (c{i})")
        return file_id

    def _known(self, db: sqlite3.Connection, signature: str) -> dict[str, int] | None:
        """The data files the index holds, with their index tables; None when it holds no index (a new
        file) or one of another signature."""
        if not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'meta'").fetchall():
            return None
        held = db.execute("SELECT value FROM meta WHERE name = 'signature'").fetchall()
        return dict(db.execute("SELECT path, id FROM files").fetchall()) if held == [(signature,)] else None

    def _create(self, db: sqlite3.Connection, signature: str) -> None:
        """An empty index of the layout (in a file of its own: `_reconcile` removed any other)."""
        with _transaction(db):
            db.execute("CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT)")
            db.execute("CREATE TABLE files (id INTEGER PRIMARY KEY, path TEXT UNIQUE NOT NULL)")
            db.execute("INSERT INTO meta VALUES ('signature', ?)", (signature,))


@contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    """A write transaction: committed when the block ends, rolled back when it raises."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
