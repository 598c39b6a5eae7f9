"""Delta tables under MLS2_DATA_DIR/lakehouse/<schema>/<table>, through delta-rs."""

import hashlib
import logging
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote

import duckdb
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable, Schema, Transaction, WriterProperties, write_deltalake
from deltalake.exceptions import DeltaError, TableNotFoundError
from deltalake.transaction import AddAction, create_table_with_add_actions
from pyroaring import BitMap64

from pipelines._engine import arrow, delta_log
from pipelines._engine.deletion_vectors import DeletionVectorError, Descriptor, positions_array
from pipelines._engine.deletion_vectors import write_file as write_dv_file
from pipelines._engine.delta_log import deletion_vectors, has_deletion_vectors, table_root
from pipelines._engine.errors import PipelineError
from pipelines._engine.sql_text import quote as quote_identifier
from pipelines._engine.sql_text import string_literal

LOG = logging.getLogger(__name__)
CHANGE_DATA_FEED = {"delta.enableChangeDataFeed": "true"}
"""Every table keeps a change feed so downstream streaming reads take only what was appended."""
UPDATE_METADATA = "mls2.update_id"
"""Commit metadata naming the pipeline update that wrote a commit."""
SAME_ROWS_AS, FILES_DIGEST = "mls2.same_rows_as", "mls2.files_digest"
"""Commit metadata of a compaction: the fingerprint of the rows it rewrote unchanged, and the digest
of the files it left (while the table's files are those, its fingerprint is the one carried)."""
FINGERPRINT_COMMITS_SEARCHED = 50
"""How far back a fingerprint looks for the compaction that left the table's files."""
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


REWRITE_FRACTION = 0.25
"""Changes to at least this fraction of a table's rows write it anew (DuckDB writes on every core, and
the result holds no deleted rows); fewer are merged on read: the replaced rows marked deleted by
deletion vectors, the new ones added in new files, the untouched rows left where they are."""
COMPACT_DELETED_FRACTION = 0.5
"""A merge also rewrites the files of which at least this fraction of rows is deleted."""
SMALL_FILE_ROWS, COMPACT_SMALL_FILES = 4 * ROW_GROUP_ROWS, 16
"""A merge also rewrites the files of fewer live rows than this, once there are more of them than
that (each merge adds a small file of the rows it changed)."""
FILE_COLUMN, ROW_COLUMN = "__file", "__row"
"""The columns `register_delta(..., positions=True)` adds: a row's data file and its position there."""
KEY_INDEX_FOLDER = "_key_index"
"""Where the indexes of large tables' keys live (`key_index`), beside the tables and outside any of them."""
SQLITE_SUFFIXES = ("", "-wal", "-shm", "-journal")
"""A SQLite database's file and the files it keeps beside it."""


def register_delta(con: duckdb.DuckDBPyConnection, name: str, table: DeltaTable, *, positions: bool = False) -> None:
    """Make a Delta table's current version readable as `name`, through DuckDB's parallel Parquet reader,
    without the rows its deletion vectors delete. With `positions`, each row also carries its data file
    (as `file_uris` names it) and its position in that file, which is what a deletion vector marks.

    The engine writes no column mapping, so the version's files are its columns; files from before a
    column was added read it as NULL.
    """
    _register_files(con, name, table.file_uris(), deleted_rows(table), table, positions=positions)


def _register_files(
    con: duckdb.DuckDBPyConnection,
    name: str,
    files: list[str],
    deleted: pa.Table,
    table: DeltaTable,
    *,
    positions: bool,
) -> None:
    """`files` of `table` readable as `name`, less the rows of `deleted` (`deleted_rows`)."""
    if not files:
        empty = table.schema().to_arrow().empty_table()
        if positions:
            empty = empty.append_column(FILE_COLUMN, arrow.array([], pa.string()))
            empty = empty.append_column(ROW_COLUMN, arrow.array([], pa.int64()))
        bind_arrow(con, name, empty)
        return
    con.execute(f"DROP VIEW IF EXISTS {name}")
    listed = ", ".join(string_literal(uri) for uri in files)
    files_view = f"{name}__files"
    if not deleted.num_rows and not positions:
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW {files_view} AS SELECT * FROM read_parquet([{listed}], union_by_name = true)"
        )
    else:
        bind_arrow(con, f"{name}__deleted", deleted)
        hidden = "" if positions else f" EXCLUDE ({FILE_COLUMN}, {ROW_COLUMN})"
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW {files_view} AS SELECT *{hidden} FROM "
            f"(SELECT * RENAME (file_row_number AS {ROW_COLUMN}) FROM read_parquet([{listed}], union_by_name = true, "
            f"filename = '{FILE_COLUMN}', file_row_number = true)) p "
            f"ANTI JOIN {name}__deleted d ON p.{FILE_COLUMN} = d.{FILE_COLUMN} AND p.{ROW_COLUMN} = d.{ROW_COLUMN}"
        )
    # The schema's columns in its order: with union_by_name the first file listed decides the order, and
    # files a merge wrote may hold the columns in another (Delta reads columns by name). Named without
    # asking DuckDB which columns the files hold (a DESCRIBE reads every file's footer once more).
    declared = [quote_identifier(field.name) for field in table.schema().fields]
    added = [FILE_COLUMN, ROW_COLUMN] if positions else []
    try:
        con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT {', '.join(declared + added)} FROM {files_view}")
    except duckdb.BinderException:
        _select_with_nulls(con, name, files_view, table, added)


def _select_with_nulls(
    con: duckdb.DuckDBPyConnection, name: str, files_view: str, table: DeltaTable, added: list[str]
) -> None:
    """`files_view` as the table's columns where no file holds some of them (a column another writer
    added to the schema alone): those read as NULL of their type, as Delta readers read them. Not a
    table whose files name columns by column mapping: every column would read as NULL."""
    mapping = table.metadata().configuration.get("delta.columnMapping.mode", "none")
    if mapping != "none":
        raise PipelineError(
            f"{table_root(table)}: Delta column mapping ({mapping} mode) is not read by the embedded engine; "
            "rewrite the table without it"
        )
    present = {column for column, _ in column_types(con, files_view)}
    bind_arrow(con, f"{name}__schema", table.schema().to_arrow().empty_table())
    selected = [
        quote_identifier(column) if column in present else f"CAST(NULL AS {kind}) AS {quote_identifier(column)}"
        for column, kind in column_types(con, f"{name}__schema")
    ]
    con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT {', '.join(selected + added)} FROM {files_view}")


def register_changes_since(con: duckdb.DuckDBPyConnection, name: str, table: DeltaTable, since_version: int) -> bool:
    """What a copy of the table at `since_version` must look at again to reach the current version, as
    two relations: `name`, the rows the commits since added, replaced or deleted, as they are in their
    data files (a replaced or deleted row as it was, a row added and then deleted too), whose keys are
    the keys that may have changed; and `name`_written, the current rows of the files written since,
    which hold every current row of those keys. Returns False when the log or a file no longer holds
    them (cleaned up or vacuumed): the copy must then be compared whole."""
    try:
        changed = delta_log.rows_changed_since(table, since_version)
    except (OSError, DeletionVectorError):
        return False
    if changed is None:
        return False
    root = table_root(table)
    whole_files = [root / path for path in sorted(changed.whole_files)]
    marked = {path: bitmap for path, bitmap in changed.positions.items() if bitmap}
    positions = _positions_table(root, marked)
    if not all(file.exists() for file in (*whole_files, *(root / path for path in changed.positions))):
        return False
    parts = []
    if whole_files:
        already_deleted = _positions_table(root, changed.whole_files)
        _register_files(con, f"{name}__whole", list(map(str, whole_files)), already_deleted, table, positions=False)
        parts.append(f"SELECT * FROM {name}__whole")
    if positions.num_rows:
        bind_arrow(con, f"{name}__positions", positions)
        listed = ", ".join(string_literal(str(root / path)) for path in marked)
        parts.append(
            f"SELECT * EXCLUDE ({FILE_COLUMN}, file_row_number) FROM read_parquet([{listed}], union_by_name = true, "
            f"filename = '{FILE_COLUMN}', file_row_number = true) p SEMI JOIN {name}__positions d "
            f"ON p.{FILE_COLUMN} = d.{FILE_COLUMN} AND p.file_row_number = d.{ROW_COLUMN}"
        )
    if parts:
        con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {' UNION ALL BY NAME '.join(parts)}")
    else:
        bind_arrow(con, name, table.schema().to_arrow().empty_table())
    current = {os.path.relpath(uri, root): uri for uri in table.file_uris()}
    written = [current[path] for path in sorted(changed.added) if path in current]
    vectors = deletion_vectors(table)
    deleted = _deleted_positions(root, {path: vectors[path] for path in changed.added if path in vectors})
    _register_files(con, f"{name}_written", written, deleted, table, positions=False)
    return True


def deleted_rows(table: DeltaTable) -> pa.Table:
    """Every row the table's deletion vectors delete, as (data file as `file_uris` names it, position)."""
    return _deleted_positions(table_root(table), deletion_vectors(table))


def _deleted_positions(root: Path, vectors: dict[str, Descriptor]) -> pa.Table:
    """The rows `vectors` (by data file relative to `root`) delete, as `deleted_rows` gives them."""
    return _positions_table(root, {path: descriptor.read(root) for path, descriptor in vectors.items()})


def _positions_table(root: Path, bitmaps: dict[str, BitMap64]) -> pa.Table:
    """Positions in data files (by path relative to `root`) as a table of (data file as `file_uris`
    names it, position). The file is named once per file, not per deleted row (`arrow.repeated`): a
    large table's deletion vectors delete hundreds of thousands of rows between compactions."""
    files, rows = [], []
    for path, bitmap in bitmaps.items():
        positions = positions_array(bitmap)
        files.append(arrow.repeated(str(root / path), len(positions)))
        rows.append(arrow.array(positions, pa.int64()))
    return pa.Table.from_arrays(
        [pa.chunked_array(files, arrow.REPEATED_TEXT), pa.chunked_array(rows, pa.int64())],
        names=[FILE_COLUMN, ROW_COLUMN],
    )


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
    `committed` for writes made on the table itself (merges). Only for a unit of work that holds the
    pipeline lock, so nothing else writes meanwhile.
    """

    def __init__(self, root: Path, *, cache_tables: bool = False, key_index_cells: int | None = None) -> None:
        # Resolved, as delta-rs resolves a table's location: paths the engine builds and paths the
        # log names must compare equal (a vacuum keeps the deletion vector files by path).
        self.root = Path(root).resolve()
        self._tables: dict[str, DeltaTable | None] | None = {} if cache_tables else None
        self._fingerprints: dict[str, tuple[DeltaTable, int, str]] = {}
        """With `cache_tables`: each table's fingerprint, with the opened table and version it is of."""
        self.key_index_cells = key_index_cells
        """Tables merged by key of at least this many cells (rows times columns) are looked up through a
        key index (None: the `key_index` module's default)."""

    def path(self, name: str) -> Path:
        schema, table = name.split(".", 1)
        return self.root / schema / table

    def key_index_path(self, name: str) -> Path:
        """The SQLite file of a table's key index (`key_index`)."""
        return self.root / KEY_INDEX_FOLDER / f"{name}.sqlite"

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
        """What the table holds now: a digest of its data files and their deletion vectors, relative to
        the table (so a moved lakehouse keeps its fingerprints; a commit that adds no file leaves it as it
        was). A compaction's commit carries the fingerprint of the rows it kept, so rewriting files does
        not make what reads the table recompute."""
        table = self.table(name)
        if table is None:
            return hashlib.sha256(b"").hexdigest()
        version = table.version()
        known = self._fingerprints.get(name)
        if known is not None and known[0] is table and known[1] == version:
            return known[2]
        fingerprint = files = self._files_digest(table)
        for commit in table.history(FINGERPRINT_COMMITS_SEARCHED):
            if commit.get("operation") == "OPTIMIZE" and commit.get(FILES_DIGEST) == files:
                fingerprint = commit[SAME_ROWS_AS]
                break
            if commit.get("operation") not in NO_DATA_CHANGE and _adds_files(commit):
                break
        if self._tables is not None:
            self._fingerprints[name] = (table, version, fingerprint)
        return fingerprint

    def _files_digest(self, table: DeltaTable) -> str:
        """A digest of a version's logical files (data files and their deletion vectors), relative to the table."""
        root, vectors = table_root(table), deletion_vectors(table)
        files = [os.path.relpath(uri, root) for uri in table.file_uris()]
        return _logical_digest([_logical_name(file, vectors) for file in files])

    def holds_deletion_vectors(self, name: str) -> bool:
        """Whether the table is written merge-on-read (its protocol names the deletion vectors feature)."""
        table = self.table(name)
        return table is not None and has_deletion_vectors(table)

    def forget(self, name: str) -> None:
        """The table was written other than through this object: open it afresh next time."""
        if self._tables is not None:
            self._tables.pop(name, None)
            self._fingerprints.pop(name, None)

    def committed(self, name: str) -> int:
        """A commit was just made to the table: open it afresh, checkpoint its log when the new version
        is due one (`delta_log.checkpoint_if_due`), whichever writer committed; the new version."""
        self.forget(name)
        table = self.table(name)
        delta_log.checkpoint_if_due(table)
        return table.version()

    def names(self) -> list[str]:
        """Every Delta table under the root, as `schema.table`."""
        return sorted(f"{log.parent.parent.name}.{log.parent.name}" for log in self.root.glob("*/*/_delta_log"))

    def vacuum(self, retention_hours: int) -> dict[str, int]:
        """Delete the data files no version of the last `retention_hours` uses (Delta VACUUM), in every
        table; returns the files removed per table. Time travel further back than that stops working.

        delta-rs's VACUUM knows data files but not deletion vector files (it would delete live ones):
        in a table with deletion vectors, the engine deletes what delta-rs lists, less the DV files the
        table's versions and recent tombstones name."""
        removed = {}
        for name in self.names():
            root = self.path(name)
            table = DeltaTable(str(root))
            # `full`: also files no version ever named (left by a write that failed before its commit).
            options = {"retention_hours": retention_hours, "enforce_retention_duration": False, "full": True}
            # delta-rs lists every tombstone past retention, even files an earlier vacuum deleted,
            # and commits twice per vacuum: count what is on disk, and vacuum only then.
            present = [root / path for path in table.vacuum(dry_run=True, **options) if (root / path).exists()]
            if has_deletion_vectors(table):
                kept = delta_log.retained_deletion_vector_files(table, retention_hours)
                present = [path for path in present if path not in kept]
                present += delta_log.abandoned_commits(table, retention_hours)
                for path in present:
                    path.unlink(missing_ok=True)
            elif present:
                table.vacuum(dry_run=False, **options)
            self.committed(name)
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
        return self.committed(name)

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

    def write_files(
        self, con: duckdb.DuckDBPyConnection, name: str, relation: str, *, per_thread: bool = True
    ) -> "WrittenFiles":
        """Write a DuckDB relation's rows as Parquet files into the table's folder, not yet in its log.

        DuckDB writes them on every core (delta-rs's writer uses one, and rows DuckDB holds, such as
        landed listings, must first be exported to Arrow for it). The files carry their row count as
        statistics, not min/max: what reads them reads them whole. Files no commit names are removed
        by a vacuum. Without `per_thread`, one file (a merge's few rows, a compaction's).
        """
        path = self.path(name)
        path.mkdir(parents=True, exist_ok=True)
        name_pattern = f"part-{uuid.uuid4()}-{{i}}"
        target, layout = (
            (path, f"PER_THREAD_OUTPUT true, OVERWRITE_OR_IGNORE true, FILENAME_PATTERN '{name_pattern}'")
            if per_thread
            else (path / f"{name_pattern.format(i=0)}.parquet", "PER_THREAD_OUTPUT false")
        )
        written = con.execute(
            f"COPY (SELECT * FROM {relation}) TO {string_literal(str(target))} (FORMAT parquet, COMPRESSION zstd, "
            f"COMPRESSION_LEVEL 1, ROW_GROUP_SIZE {ROW_GROUP_ROWS}, {layout}, RETURN_STATS true)"
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
        return self.committed(name)

    def delete_and_add(
        self,
        con: duckdb.DuckDBPyConnection,
        name: str,
        deleted: str,
        written: "WrittenFiles | None",
        *,
        metadata: dict | None = None,
        checkpoints: dict[str, int] | None = None,
        operation: str = "MERGE",
    ) -> int:
        """Merge-on-read: mark the rows of `deleted` (a DuckDB relation of `__file`, `__row`, as
        `register_delta(..., positions=True)` gives them) deleted with deletion vectors, and add the files
        `written` wrote (the rows that replace them, with the table's columns), in one commit carrying
        `checkpoints`. The untouched rows of a file stay where they are. Returns the new version.

        A file all of whose rows are deleted is removed; then files mostly deleted, and small files once
        there are many, are rewritten (`compact`)."""
        table = self.table(name)
        if written is not None and sorted(_columns(table.schema())) != sorted(
            _columns(Schema.from_arrow(written.schema()))
        ):
            raise PipelineError(f"{name}: rows added by a merge must have the table's columns")
        root, described = table_root(table), self._files(table)
        vectors = deletion_vectors(table)
        marked = con.execute(
            f"SELECT {FILE_COLUMN}, list({ROW_COLUMN}) FROM {deleted} GROUP BY {FILE_COLUMN}"
        ).fetchall()
        bitmaps, removes, adds = {}, [], []
        for uri, rows in marked:
            path = os.path.relpath(uri, root)
            if path not in described:
                raise PipelineError(f"{name}: {path} is not a data file of version {table.version()}")
            previous = vectors.get(path)
            bitmap = previous.read(root) if previous is not None else BitMap64()
            bitmap.update(rows)
            removes.append(_remove_action(path, described[path], previous))
            if len(bitmap) < described[path]["num_records"]:
                bitmaps[path] = bitmap
        descriptors = write_dv_file(root, list(bitmaps.values())) if bitmaps else []
        for path, descriptor in zip(bitmaps, descriptors, strict=True):
            adds.append(_add_action(path, described[path], descriptor))
        if written is not None:
            written.remove_empty()
            adds.extend(_new_file_action(file.relative_to(root).as_posix(), file, rows) for file, rows in written.files)
        actions = [
            delta_log.commit_info(
                operation,
                {"mode": "merge-on-read"},
                {"num_added_files": len(adds), "num_removed_files": len(removes), "num_deletion_vectors": len(bitmaps)},
                {key: str(value) for key, value in (metadata or {}).items()},
            ),
            *delta_log.upgrade_actions(table),
            *delta_log.transactions(checkpoints or {}),
            *({"remove": action} for action in removes),
            *({"add": action} for action in adds),
        ]
        version = delta_log.commit(table, actions)
        self.committed(name)
        try:
            self.compact(con, name, deleted_fraction=COMPACT_DELETED_FRACTION, small_files=COMPACT_SMALL_FILES)
        except (OSError, duckdb.Error, DeltaError, PipelineError) as error:
            # The merge is committed; a compaction that failed is tried again after the next one.
            LOG.warning("%s: compaction after version %s failed: %s", name, version, error)
        return version

    def compact(
        self,
        con: duckdb.DuckDBPyConnection,
        name: str,
        *,
        deleted_fraction: float = COMPACT_DELETED_FRACTION,
        small_files: int = COMPACT_SMALL_FILES,
    ) -> int:
        """Rewrite the files of a table whose rows are at least `deleted_fraction` deleted, and, once more
        than `small_files` files hold fewer than SMALL_FILE_ROWS rows, those too, as new files of their live
        rows (an OPTIMIZE commit: the rows stay the same). Returns how many files it rewrote."""
        table = self.table(name)
        if table is None:
            return 0
        root, described, vectors = table_root(table), self._files(table), deletion_vectors(table)
        deleted = {path: vectors[path].cardinality if path in vectors else 0 for path in described}
        chosen = [
            path
            for path, row in described.items()
            if deleted[path] and deleted[path] >= row["num_records"] * deleted_fraction
        ]
        small = [path for path, row in described.items() if row["num_records"] - deleted[path] < SMALL_FILE_ROWS]
        if len(small) > small_files:
            chosen = sorted(set(chosen) | set(small))
        if not chosen:
            return 0
        same_rows = self.fingerprint(name)
        in_chosen = _deleted_positions(root, {path: vectors[path] for path in chosen if path in vectors})
        _register_files(con, "compacted_rows", [str(root / path) for path in chosen], in_chosen, table, positions=False)
        try:
            written = self.write_files(con, name, "compacted_rows", per_thread=False)
        finally:
            con.execute("DROP VIEW IF EXISTS compacted_rows")
            con.execute("DROP VIEW IF EXISTS compacted_rows__deleted")
        written.remove_empty()
        files_after = _logical_digest(
            [_logical_name(path, vectors) for path in described if path not in chosen]
            + [os.path.relpath(file, root) for file, _ in written.files]
        )
        removes = [_remove_action(path, described[path], vectors.get(path), data_change=False) for path in chosen]
        adds = [
            _new_file_action(file.relative_to(root).as_posix(), file, rows, data_change=False)
            for file, rows in written.files
        ]
        actions = [
            delta_log.commit_info(
                "OPTIMIZE",
                {"rewritten": "files mostly deleted, or many small"},
                {"num_added_files": len(adds), "num_removed_files": len(removes)},
                {SAME_ROWS_AS: same_rows, FILES_DIGEST: files_after},
            ),
            *({"remove": action} for action in removes),
            *({"add": action} for action in adds),
        ]
        delta_log.commit(table, actions)
        self.committed(name)
        return len(chosen)

    def row_count(self, name: str) -> int:
        """The table's rows, from its log: each file's row count less what its deletion vector deletes."""
        table = self.table(name)
        if table is None:
            return 0
        vectors = deletion_vectors(table)
        files = self._files(table)
        return sum(row["num_records"] for row in files.values()) - sum(
            vector.cardinality for path, vector in vectors.items() if path in files
        )

    def write_arrow(self, name: str, rows: pa.Table) -> "WrittenFiles":
        """Write Arrow rows as one Parquet file into the table's folder, not yet in its log (as `write_files`)."""
        path = self.path(name)
        path.mkdir(parents=True, exist_ok=True)
        file = path / f"part-{uuid.uuid4()}-0.parquet"
        pq.write_table(rows, file, row_group_size=ROW_GROUP_ROWS, compression="zstd", compression_level=1)
        return WrittenFiles(name, path, [(file, rows.num_rows)])

    def _files(self, table: DeltaTable) -> dict[str, dict]:
        """The version's data files by path relative to the table: size, modification time, row count."""
        actions = arrow.read_stream(table.get_add_actions(flatten=True)).select(
            ["path", "size_bytes", "modification_time", "num_records"]
        )
        files = {unquote(row.pop("path")): row for row in actions.to_pylist()}
        root = table_root(table)
        for path, row in files.items():
            if row["num_records"] is None:
                row["num_records"] = pq.ParquetFile(root / path).metadata.num_rows
        return files

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
        remove_database(self.key_index_path(name))
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
        """The files' rows as Arrow batches of `schema()` (through pyarrow.parquet: pyarrow.dataset
        would import pandas, a noticeable part of a small update)."""
        schema = self.schema()
        batches = (batch.cast(schema) for file, _ in self.files for batch in pq.ParquetFile(file).iter_batches())
        return pa.RecordBatchReader.from_batches(schema, batches)

    def remove(self) -> None:
        for file, _ in self.files:
            file.unlink(missing_ok=True)

    def remove_empty(self) -> None:
        """Delete the files that hold no row."""
        for file, rows in self.files:
            if not rows:
                file.unlink(missing_ok=True)
        self.files = [(file, rows) for file, rows in self.files if rows]


def remove_database(path: Path) -> None:
    """Remove a SQLite database and the journal files beside it."""
    for suffix in SQLITE_SUFFIXES:
        path.with_name(path.name + suffix).unlink(missing_ok=True)


def _logical_name(path: str, vectors: dict[str, Descriptor]) -> str:
    """A data file as a logical file of the table: with its deletion vector's id when it has one."""
    return f"{path}@{vectors[path].unique_id}" if path in vectors else path


def _logical_digest(logical_files: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(logical_files)).encode()).hexdigest()


def _adds_files(commit: dict) -> bool:
    """Whether a commit added or removed files (one without metrics is taken to have)."""
    metrics = commit.get("operationMetrics") or {}
    return metrics.get("num_added_files", 1) != 0 or metrics.get("num_removed_files", 1) != 0


def _remove_action(path: str, described: dict, vector: Descriptor | None, *, data_change: bool = True) -> dict:
    """The `remove` of a logical file: its path and the deletion vector it had (they identify it)."""
    action = {
        "path": quote(path),
        "deletionTimestamp": delta_log.now_ms(),
        "dataChange": data_change,
        "extendedFileMetadata": True,
        "partitionValues": {},
        "size": described["size_bytes"],
        "stats": orjson.dumps({"numRecords": described["num_records"]}).decode(),
    }
    if vector is not None:
        action["deletionVector"] = vector.action()
    return action


def _add_action(path: str, described: dict, vector: Descriptor) -> dict:
    """The `add` of a data file already in the table with a new deletion vector (row count of the whole
    file, as the protocol requires; no min/max, so no bounds to widen)."""
    return {
        "path": quote(path),
        "partitionValues": {},
        "size": described["size_bytes"],
        "modificationTime": described["modification_time"],
        "dataChange": True,
        "stats": orjson.dumps({"numRecords": described["num_records"], "tightBounds": False}).decode(),
        "deletionVector": vector.action(),
    }


def _new_file_action(path: str, file: Path, rows: int, *, data_change: bool = True) -> dict:
    stat = file.stat()
    return {
        "path": quote(path),
        "partitionValues": {},
        "size": stat.st_size,
        "modificationTime": int(stat.st_mtime * 1000),
        "dataChange": data_change,
        "stats": orjson.dumps({"numRecords": rows}).decode(),
    }


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
