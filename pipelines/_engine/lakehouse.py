"""Delta tables under MLS2_DATA_DIR/lakehouse/<schema>/<table>, through delta-rs."""

import hashlib
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import duckdb
import orjson
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable, Schema, Transaction, WriterProperties, write_deltalake
from deltalake.exceptions import TableNotFoundError
from deltalake.transaction import AddAction, create_table_with_add_actions

from pipelines._engine.sql import string_literal

CHANGE_DATA_FEED = {"delta.enableChangeDataFeed": "true"}
"""Every table keeps a change feed so downstream streaming reads take only what was appended."""
UPDATE_METADATA = "mls2.update_id"
"""Commit metadata naming the pipeline update that wrote a commit."""
COMMITS_SEARCHED = 10
"""How far back `last_commit_metadata` looks past commits of others (a vacuum commits twice)."""
ROW_GROUP_ROWS = 8_192
"""Small row groups: readers split work by row group, so a table of a few thousand wide rows
(payloads of tens of KB) is still read and parsed on every core."""
WRITER = WriterProperties(max_row_group_size=ROW_GROUP_ROWS, compression="ZSTD", compression_level=1)
"""How every write and merge lays out Parquet (a MERGE left to delta-rs defaults wrote SNAPPY files of one
row group, which DuckDB reads on one thread and holds whole in memory)."""


def bind_arrow(con: duckdb.DuckDBPyConnection, name: str, data: pa.Table) -> None:
    """Make Arrow data readable as `name`, replacing whatever had that name."""
    con.execute(f"DROP VIEW IF EXISTS {name}")
    con.register(name, data)


def column_types(con: duckdb.DuckDBPyConnection, relation: str) -> list[tuple[str, str]]:
    """A DuckDB relation's columns as (name, type), in order."""
    return [(row[0], row[1]) for row in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()]


def register_delta(con: duckdb.DuckDBPyConnection, name: str, table: DeltaTable) -> None:
    """Make a Delta table's current version readable as `name`, through DuckDB's parallel Parquet reader.

    delta-rs writes plain Parquet (no deletion vectors, no column mapping), so the version's files
    are its rows; files from before a column was added read it as NULL.
    """
    files = table.file_uris()
    if not files:
        bind_arrow(con, name, table.schema().to_arrow().empty_table())
        return
    con.execute(f"DROP VIEW IF EXISTS {name}")
    listed = ", ".join(string_literal(uri) for uri in files)
    con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT * FROM read_parquet([{listed}], union_by_name = true)")


NO_DATA_CHANGE = {"VACUUM START", "VACUUM END", "OPTIMIZE"}
"""Delta operations that leave a table's rows as they were."""


def last_data_change(table: DeltaTable, *, look_back: int = 50) -> dict | None:
    """The table's latest commit that changed its rows, among its last `look_back`: not a VACUUM or
    OPTIMIZE, nor a write that added and removed no file (a view recomputed to the same rows records
    its inputs in such a commit)."""
    for commit in table.history(limit=look_back):
        metrics = commit.get("operationMetrics") or {}
        empty = metrics.get("num_added_files") == 0 and metrics.get("num_removed_files") == 0
        if commit.get("operation") not in NO_DATA_CHANGE and not empty:
            return commit
    return None


class Lakehouse:
    """Delta tables by `schema.table` name.

    With `cache_tables`, each table is opened once (opening reads its log: an update's repeated opens
    added up to a noticeable part of it) and opened again after a write through this object, or after
    `forget` for writes made on the table itself (merges). Only for a unit of work that holds the
    pipeline lock, so nothing else writes meanwhile.
    """

    def __init__(self, root: Path, *, cache_tables: bool = False) -> None:
        self.root = Path(root)
        self._tables: dict[str, DeltaTable | None] | None = {} if cache_tables else None

    def path(self, name: str) -> Path:
        schema, table = name.split(".", 1)
        return self.root / schema / table

    def table(self, name: str) -> DeltaTable | None:
        if self._tables is not None and name in self._tables:
            return self._tables[name]
        try:
            table = DeltaTable(str(self.path(name)))
        except TableNotFoundError:
            table = None
        if self._tables is not None:
            self._tables[name] = table
        return table

    def fingerprint(self, name: str) -> str:
        """What the table holds now: a digest of its data files, relative to the table (so a moved
        lakehouse keeps its fingerprints; a commit that adds no file leaves it as it was)."""
        table, root = self.table(name), self.path(name)
        files = sorted(os.path.relpath(uri, root) for uri in table.file_uris()) if table is not None else []
        return hashlib.sha256("\n".join(files).encode()).hexdigest()

    def forget(self, name: str) -> None:
        """The table was written other than through this object: open it afresh next time."""
        if self._tables is not None:
            self._tables.pop(name, None)

    def names(self) -> list[str]:
        """Every Delta table under the root, as `schema.table`."""
        return sorted(f"{log.parent.parent.name}.{log.parent.name}" for log in self.root.glob("*/*/_delta_log"))

    def vacuum(self, retention_hours: int) -> dict[str, int]:
        """Delete the data files no version of the last `retention_hours` uses (Delta VACUUM), in every
        table; returns the files removed per table. Time travel further back than that stops working."""
        removed = {}
        for name in self.names():
            root = self.path(name)
            table = DeltaTable(str(root))
            # `full`: also files no version ever named (left by a write that failed before its commit).
            options = {"retention_hours": retention_hours, "enforce_retention_duration": False, "full": True}
            # delta-rs lists every tombstone past retention, even files an earlier vacuum deleted,
            # and commits twice per vacuum: count what is on disk, and vacuum only then.
            present = [path for path in table.vacuum(dry_run=True, **options) if (root / path).exists()]
            if present:
                table.vacuum(dry_run=False, **options)
                self.forget(name)
            removed[name] = len(present)
        return removed

    def version(self, name: str) -> int | None:
        table = self.table(name)
        return None if table is None else table.version()

    def append(
        self,
        name: str,
        data: pa.Table | pa.RecordBatchReader,
        *,
        metadata: dict | None = None,
        checkpoints: dict[str, int] | None = None,
    ) -> int:
        return self._write(name, data, mode="append", metadata=metadata, checkpoints=checkpoints)

    def overwrite(
        self,
        name: str,
        data: pa.Table | pa.RecordBatchReader,
        *,
        metadata: dict | None = None,
        checkpoints: dict[str, int] | None = None,
    ) -> int:
        return self._write(name, data, mode="overwrite", metadata=metadata, checkpoints=checkpoints)

    def _write(
        self,
        name: str,
        data: pa.Table | pa.RecordBatchReader,
        *,
        mode: str,
        metadata: dict | None,
        checkpoints: dict[str, int] | None,
    ) -> int:
        path = self.path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_deltalake(
            str(path),
            data,
            mode=mode,
            schema_mode="overwrite" if mode == "overwrite" else "merge",
            configuration=CHANGE_DATA_FEED,
            writer_properties=WRITER,
            commit_properties=commit_properties(metadata, checkpoints),
        )
        self.forget(name)
        return self.table(name).version()

    def replace_with_relation(
        self,
        con: duckdb.DuckDBPyConnection,
        name: str,
        relation: str,
        *,
        metadata: dict | None = None,
        checkpoints: dict[str, int] | None = None,
    ) -> int:
        """Replace a table's rows (and schema) with a DuckDB relation's; returns the new version."""
        written = self.write_files(con, name, relation)
        return self.commit_files(written, mode="overwrite", metadata=metadata, checkpoints=checkpoints)

    def write_files(self, con: duckdb.DuckDBPyConnection, name: str, relation: str) -> "WrittenFiles":
        """Write a DuckDB relation's rows as Parquet files into the table's folder, not yet in its log.

        DuckDB writes them on every core (delta-rs's writer uses one, and rows DuckDB holds, such as
        landed listings, must first be exported to Arrow for it). The files carry their row count as
        statistics, not min/max: what reads them reads them whole. Files no commit names are removed
        by a vacuum.
        """
        path = self.path(name)
        path.mkdir(parents=True, exist_ok=True)
        written = con.execute(
            f"COPY (SELECT * FROM {relation}) TO {string_literal(str(path))} (FORMAT parquet, COMPRESSION zstd, "
            f"COMPRESSION_LEVEL 1, ROW_GROUP_SIZE {ROW_GROUP_ROWS}, PER_THREAD_OUTPUT true, OVERWRITE_OR_IGNORE true, "
            f"FILENAME_PATTERN 'part-{uuid.uuid4()}-{{i}}', RETURN_STATS true)"
        ).fetchall()
        return WrittenFiles(name, path, [(Path(file), rows) for file, rows, *_ in written])

    def commit_files(
        self,
        written: "WrittenFiles",
        *,
        mode: str,
        metadata: dict | None = None,
        checkpoints: dict[str, int] | None = None,
    ) -> int:
        """Commit files `write_files` wrote: replacing the table's rows and schema (`overwrite`), or
        adding to them (`append`); returns the new version. The table's schema is read from the files,
        so log and files agree, with every column allowing nulls as in a table Spark writes.
        `checkpoints` commit with the rows.

        An append whose files have other columns than the table goes through delta-rs's writer, which
        merges the schemas (a commit of files alone would keep the table's schema and hide the new columns).
        """
        name, path = written.name, written.path
        schema = Schema.from_arrow(written.schema())
        commit = commit_properties(metadata, checkpoints)
        table = self.table(name)
        if mode == "append" and table is not None:
            if _columns(table.schema()) != _columns(schema):
                self._write(name, written.reader(), mode="append", metadata=metadata, checkpoints=checkpoints)
                written.remove()
                return self.table(name).version()
            # An empty batch adds no file (DuckDB writes one of no rows): the table's data, and so its
            # fingerprint, stay as they were; the commit still moves the checkpoints.
            written.remove_empty()
        actions = []
        for file, rows in written.files:
            stat = file.stat()
            actions.append(
                AddAction(
                    path=file.relative_to(path).as_posix(),
                    size=stat.st_size,
                    partition_values={},
                    modification_time=int(stat.st_mtime * 1000),
                    data_change=True,
                    stats=orjson.dumps({"numRecords": rows}).decode(),
                )
            )
        if table is None:
            create_table_with_add_actions(
                str(path), schema, actions, configuration=CHANGE_DATA_FEED, commit_properties=commit
            )
        else:
            table.create_write_transaction(actions, mode=mode, schema=schema, commit_properties=commit)
        self.forget(name)
        return self.table(name).version()

    def last_commit_metadata(self, name: str) -> dict:
        """The newest commit the pipeline made to the table (not a vacuum's), with its custom metadata."""
        table = self.table(name)
        if table is None:
            return {}
        [last] = table.history(1)
        if UPDATE_METADATA in last:
            return last
        return next((commit for commit in table.history(COMMITS_SEARCHED) if UPDATE_METADATA in commit), last)

    def drop(self, name: str) -> None:
        """Remove a table's data and log (a full refresh starts it again from nothing)."""
        import shutil

        shutil.rmtree(self.path(name), ignore_errors=True)
        self.forget(name)


@dataclass
class WrittenFiles:
    """Parquet files DuckDB wrote into a table's folder (`Lakehouse.write_files`), each with its row count."""

    name: str
    path: Path
    files: list[tuple[Path, int]]

    def relation(self) -> str:
        """The files' rows, as a DuckDB table function."""
        return "read_parquet([" + ", ".join(string_literal(str(file)) for file, _ in self.files) + "])"

    def schema(self) -> pa.Schema:
        """The files' columns, every one allowing nulls: DuckDB marks a Parquet column required when the
        rows it wrote had no null there, and the table's other rows may have them."""
        return pa.schema([_nullable(field) for field in pq.read_schema(self.files[0][0])])

    def reader(self) -> pa.RecordBatchReader:
        files = [str(file) for file, _ in self.files]
        return ds.dataset(files, format="parquet", schema=self.schema()).scanner().to_reader()

    def remove(self) -> None:
        for file, _ in self.files:
            file.unlink(missing_ok=True)

    def remove_empty(self) -> None:
        """Delete the files that hold no row."""
        for file, rows in self.files:
            if not rows:
                file.unlink(missing_ok=True)
        self.files = [(file, rows) for file, rows in self.files if rows]


def _columns(schema: Schema) -> list[tuple[str, str]]:
    """A Delta schema's columns as (name, type), nullability aside."""
    return [(field.name, str(field.type)) for field in schema.fields]


def _nullable(field: pa.Field) -> pa.Field:
    """`field`, and every field nested in it, allowing nulls."""
    kind = field.type
    if pa.types.is_struct(kind):
        kind = pa.struct([_nullable(child) for child in kind.fields])
    elif pa.types.is_large_list(kind):
        kind = pa.large_list(_nullable(kind.value_field))
    elif pa.types.is_list(kind):
        kind = pa.list_(_nullable(kind.value_field))
    elif pa.types.is_map(kind):
        kind = pa.map_(kind.key_field, _nullable(kind.item_field))
    return pa.field(field.name, kind, nullable=True, metadata=field.metadata)


def commit_properties(metadata: dict | None, checkpoints: dict[str, int] | None) -> CommitProperties:
    """Custom commit metadata plus stream checkpoints as Delta app transactions (atomic with the data)."""
    return CommitProperties(
        custom_metadata={key: str(value) for key, value in (metadata or {}).items()},
        app_transactions=[
            Transaction(app_id=app_id, version=version) for app_id, version in (checkpoints or {}).items()
        ],
    )
