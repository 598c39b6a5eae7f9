"""Publishing gold for serving: the serving snapshot (`pipelines.snapshot`, its format) written from the
gold Delta tables, a DuckDB file per table, swapped in atomically by moving the pointer.

Files are per table so that an update touching listings does not copy the media table: an
unchanged table keeps its file.

Serving reads whole records by key, which a column store does slowly (reading one row
decompresses a block of every column: 300 for Property), so each row's record is also written as
OData JSON (timestamps in UTC with `Z`, decimals as JSON numbers) in the file's documents file
(see `pipelines.snapshot.documents`), and the row says where. Rows are stored in the order they are looked up by: the
column `$expand` follows into the table, then the key (a listing's media side by side, in the order
`$expand` serves them), else `ModificationTimestamp` (replication pages touch few row groups); a
patch appends the rows it writes, in that order. The key and every lookup column are indexed.
Each row also carries `__hash`, so the next publish, which patches an older file of the table,
rewrites only the rows whose hash changed.

Where `$expand` follows a column into the table, the documents of the rows sharing a value of it are
written as one run: a page expanding its listings' media reads one slice per listing (the items of
its JSON array) instead of looking up every media row. Where each record's document lies by key, and each
run's, is also kept in a SQLite file beside the DuckDB file (see `pipelines.snapshot.places`), read
without a query.
"""

import logging
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
from deltalake import DeltaTable

from pipelines._engine.lakehouse import Lakehouse, column_types, register_changes_since, register_delta
from pipelines._engine.sql_text import string_literal
from pipelines.snapshot.copies import clone_or_copy, link_or_copy, release_preallocation
from pipelines.snapshot.documents import (
    DOCUMENT_AT,
    DOCUMENT_SIZE,
    SEPARATOR,
    append_documents,
    create_blocks_table,
    documents_of,
    read_blocks,
)
from pipelines.snapshot.places import (
    GENERATION_TABLE,
    index_files,
    index_generation,
    new_generation,
    patch_places,
    places_of,
    recorded_generation,
    write_places,
)
from pipelines.snapshot.pointer import check_layout, read_pointer, write_pointer
from pipelines.snapshot.readers import is_complete

LOG = logging.getLogger(__name__)

HASH_COLUMN = "__hash"
SOURCE_VERSION_TABLE = "__gold_version"
"""The table of a snapshot file recording the gold table (its Delta id) and version its rows reflect:
the next publish compares only the rows gold's log says changed since."""
SERVING_DATABASE = "serving_snapshot"
UNSUITED_COMPRESSION = "zstd"
"""Compression the snapshot does without. DuckDB 2.0 stores long strings as ZSTD, and reading one row
of it decompresses a whole vector. Dictionary and FSST compression stay: rows are read whole from
the documents file, the table's columns only by filters, sorts and scans, and they shrink the
serving tables about fourfold (figures in benchmarks/RESULTS.md)."""
WHOLE_SECONDS = "%Y-%m-%dT%H:%M:%SZ"
MICROSECONDS = "%Y-%m-%dT%H:%M:%S.%fZ"
SERVING_ROW_GROUP_SIZE = 30_720
"""Rows per row group in a snapshot file (DuckDB's default: 122,880). A page in modification order
(`$orderby=ModificationTimestamp desc`, `$top=100`) reads the newest row groups and skips the rest
by their min/max: at 100,000 listings the default made the whole table one row group, read in full
for every page, at 1,000,000 two of them; pages read markedly faster at this size. Smaller still
gained little and slowed full scans (a count over every row)."""


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


SERVED_COLUMNS = [(HASH_COLUMN, "UBIGINT"), (DOCUMENT_AT, "BIGINT"), (DOCUMENT_SIZE, "INTEGER")]
"""What a serving table has after its source's columns."""


def _served_rows(source: str) -> str:
    """`source`'s rows with a hash of the row (what tells a changed row next time) and room for where
    their document lies."""
    places = ", ".join(f'NULL::{kind} AS "{name}"' for name, kind in SERVED_COLUMNS[1:])
    return f'SELECT *, hash(source_row) AS "{HASH_COLUMN}", {places} FROM {source} source_row'


def _in_lookup_order(source: str, key: str, lookups: Sequence[str], columns: list[tuple[str, str]]) -> str:
    """`source` sorted in the order rows are looked up by."""
    first = lookups[:1] or [name for name in ("ModificationTimestamp",) if name in dict(columns)]
    order = ", ".join(f'"{c}"' for c in (*first, key))
    return f"(SELECT * FROM {source} ORDER BY {order})"


def _places_sql(name: str, key: str, where: str) -> str:
    """Where the document of each of `name`'s rows matching `where` lies, in key order."""
    return f'SELECT "{key}", "{DOCUMENT_AT}", "{DOCUMENT_SIZE}" FROM "{name}" WHERE {where} ORDER BY "{key}"'


def _runs_sql(name: str, column: str, where: str) -> str:
    """Each value of `column` among `name`'s rows matching `where`, with the run its rows' documents
    make: from the first to the end of the last. A run is NULL unless only separators lie between
    them (readers then look the rows up one by one), which they do when written in stored order:
    build within `serving_storage`, which keeps insertion order."""
    at, size = f'"{DOCUMENT_AT}"', f'"{DOCUMENT_SIZE}"'
    span = f"max({at} + {size}) - min({at})"
    whole = f"{span} = sum({size}) + (count(*) - 1) * {len(SEPARATOR)}"
    return (
        f'SELECT "{column}", CASE WHEN {whole} THEN min({at}) END AS {at}, '
        f"CAST(CASE WHEN {whole} THEN {span} END AS INTEGER) AS {size} "
        f'FROM "{name}" WHERE "{column}" IS NOT NULL AND {where} GROUP BY "{column}" ORDER BY "{column}"'
    )


def _write_places(con: duckdb.DuckDBPyConnection, name: str, database: Path, key: str, lookups: Sequence[str]) -> None:
    """The places index of `name` anew, at a new generation."""
    runs = (lookups[0], _runs_sql(name, lookups[0], "true")) if lookups else None
    write_places(con, places_of(database), new_generation(con), _places_sql(name, key, "true"), runs)


def create_serving_table(
    con: duckdb.DuckDBPyConnection,
    name: str,
    source: str,
    database: Path,
    key: str,
    lookups: Sequence[str] = (),
) -> None:
    """`name` from the relation `source` in the `database` being built: every column plus `__hash`
    and its document's place in the documents file (a new one: an older one is unlinked, never
    truncated, as it may be a link to the served file's), stored in lookup order, indexed, and its
    documents' places (by key, and as runs by its first lookup column) in the places index."""
    columns = column_types(con, source)
    documents = documents_of(database)
    # A build stopped before its places index is written must not leave the old one looking current.
    con.execute(f'DROP TABLE IF EXISTS "{GENERATION_TABLE}"')
    for stale in index_files(places_of(database)):
        stale.unlink(missing_ok=True)
    con.execute(f'CREATE TABLE "{name}" AS {_served_rows(_in_lookup_order(source, key, lookups, columns))}')
    documents.unlink(missing_ok=True)
    create_blocks_table(con)
    append_documents(con, name, document_sql(columns), documents, where="true")
    for index, (column, unique) in _indexes(name, key, lookups).items():
        con.execute(f'CREATE {"UNIQUE " if unique else ""}INDEX "{index}" ON "{name}" ("{column}")')
    _write_places(con, name, database, key, lookups)


def _indexes(name: str, key: str, lookups: Sequence[str]) -> dict[str, tuple[str, bool]]:
    """The indexes a serving table has: index name -> (column, unique)."""
    return {f"{name}_key": (key, True), **{f"{name}_{column}": (column, False) for column in lookups}}


def _is_served_shape(
    con: duckdb.DuckDBPyConnection,
    name: str,
    database: Path,
    key: str,
    lookups: Sequence[str],
    columns: list[tuple[str, str]],
) -> bool:
    """Whether table `name` of the database being built is a complete serving table for `columns`:
    its columns, its documents file and places index (a file written by a version before them has
    none), then every index (a file left by a publish that failed before indexing has none)."""
    if name not in _table_names(con) or not is_complete(database):
        return False
    if column_types(con, f'"{name}"') != [*columns, *SERVED_COLUMNS]:
        return False
    held = con.execute(
        "SELECT index_name, is_unique FROM duckdb_indexes() "
        "WHERE table_name = ? AND database_name = current_database()",
        [name],
    ).fetchall()
    return dict(held) == {index: unique for index, (_, unique) in _indexes(name, key, lookups).items()}


@dataclass(frozen=True)
class Changes:
    """What may have changed in a patch's source since the served table was last brought up to date."""

    keys: str
    """A relation with the key column of every row that may have changed (added, replaced or deleted)."""
    rows: str
    """A relation of the source's rows holding every current row of those keys (the files written since)."""


DEAD_DOCUMENTS_SHARE = 0.5
DEAD_DOCUMENTS_MIN_BYTES = 64 * 2**20
"""A documents file of more than DEAD_DOCUMENTS_MIN_BYTES, more than DEAD_DOCUMENTS_SHARE of which no
row of the table points to, is written anew. Dead documents are those of rows removed, and those
other snapshots sharing the file appended."""


def compare_with_served(
    con: duckdb.DuckDBPyConnection, name: str, source: str, key: str, lookups: Sequence[str], changes: "Changes | None"
) -> str:
    """Compare the served table `name` with `source` by key and row hash (the one definition of a served
    row's hash), into temporary tables: `incoming` (the source's rows compared: key, first lookup
    column, hash), `stale` (keys of served rows no incoming row equals) and `fresh` (keys of incoming
    rows no served row equals). With `changes`, only the keys it names, from its rows. Returns the
    relation the incoming rows come from."""
    quoted = f'"{key}"'
    same = f's.{quoted} = i.{quoted} AND s."{HASH_COLUMN}" = i."{HASH_COLUMN}"'
    run_column = [f'"{lookups[0]}"'] if lookups else []
    candidates, served, among = source, f'"{name}"', "true"
    if changes is not None:
        candidates, served, among = changes.rows, "served_changed", f"{quoted} IN (SELECT {quoted} FROM changed_keys)"
        con.execute(f"CREATE OR REPLACE TEMP TABLE changed_keys AS SELECT DISTINCT {quoted} FROM {changes.keys}")
        con.execute(
            f'CREATE OR REPLACE TEMP TABLE {served} AS SELECT {quoted}, "{HASH_COLUMN}" FROM "{name}" WHERE {among}'
        )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE incoming AS SELECT {', '.join([quoted, *run_column])}, "
        f'hash(source_row) AS "{HASH_COLUMN}" FROM {candidates} source_row WHERE {among}'
    )
    con.execute(f"CREATE OR REPLACE TEMP TABLE stale AS SELECT {quoted} FROM {served} s ANTI JOIN incoming i ON {same}")
    con.execute(f"CREATE OR REPLACE TEMP TABLE fresh AS SELECT {quoted} FROM incoming i ANTI JOIN {served} s ON {same}")
    return candidates


def patch_serving_table(
    con: duckdb.DuckDBPyConnection,
    name: str,
    source: str,
    database: Path,
    key: str,
    lookups: Sequence[str] = (),
    changes: "Changes | None" = None,
) -> tuple[int, int] | None:
    """Bring the existing `name` up to `source`, rewriting only rows that changed (by key and row
    hash), or every row of a run one changed in, and appending their documents, in one transaction,
    then the places index: returns (rows removed, rows written), or None when `name` is absent, its
    columns differ, an index is missing, its documents are not in blocks (an earlier layout) or its
    documents file is mostly dead (build it anew).

    `changes` limits the comparison to the keys that may have changed since `name` was brought up to
    date; without it every row is compared."""
    columns = column_types(con, source)
    documents = documents_of(database)
    if not _is_served_shape(con, name, database, key, lookups, columns):
        return None
    blocks = read_blocks(con)
    if blocks is None:  # documents written before they were compressed in blocks
        return None
    [(live,)] = con.execute(f'SELECT coalesce(sum("{DOCUMENT_SIZE}"), 0) FROM "{name}"').fetchall()
    held, stored = blocks.end, documents.stat().st_size
    # What the live documents take in the file, at the ratio this table's blocks compressed to.
    live_stored = blocks.stored * live / held if held else 0
    if stored > DEAD_DOCUMENTS_MIN_BYTES and stored * (1 - DEAD_DOCUMENTS_SHARE) > live_stored:
        return None
    quoted = f'"{key}"'
    run_column = [f'"{lookups[0]}"'] if lookups else []
    candidates = compare_with_served(con, name, source, key, lookups, changes)
    if lookups:
        _widen_to_runs(con, name, key, lookups[0], by_key=changes is not None)
    # Keys of unchanged rows in a run a change touched: the served file holds them as the source does.
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE kept_keys AS SELECT f.{quoted} FROM fresh f ANTI JOIN incoming i "
        f"ON f.{quoted} = i.{quoted}"
    )
    [(removed, written, elsewhere)] = con.execute(
        "SELECT (SELECT count(*) FROM stale), (SELECT count(*) FROM fresh), (SELECT count(*) FROM kept_keys)"
    ).fetchall()
    rows = (
        f"SELECT * FROM {candidates} WHERE {quoted} IN (SELECT {quoted} FROM fresh) "
        f"AND {quoted} IN (SELECT {quoted} FROM incoming)"
    )
    if elsewhere:
        served_only = ", ".join(f'"{column}"' for column, _ in SERVED_COLUMNS)
        con.execute(
            f'CREATE OR REPLACE TEMP TABLE kept AS SELECT * EXCLUDE ({served_only}) FROM "{name}" '
            f"WHERE {quoted} IN (SELECT {quoted} FROM kept_keys)"
        )
        rows += " UNION ALL BY NAME SELECT * FROM kept"
    indexed_at = recorded_generation(con)
    con.execute("BEGIN TRANSACTION")
    try:
        if removed:
            con.execute(f'DELETE FROM "{name}" WHERE {quoted} IN (SELECT {quoted} FROM stale)')
        if written:
            ordered = _in_lookup_order(f"({rows})", key, lookups, columns)
            con.execute(f'INSERT INTO "{name}" BY NAME {_served_rows(ordered)}')
        # Also rows an interrupted patch left without their documents (before patches were one
        # transaction): the next one sees them as already there.
        append_documents(con, name, document_sql(columns), documents, where=f'"{DOCUMENT_AT}" IS NULL')
        generation = new_generation(con)
        con.execute("COMMIT")
    except BaseException:
        with suppress(duckdb.Error):
            con.execute("ROLLBACK")
        raise
    # The rows whose documents the patch wrote, and the runs it touched.
    changes = [("places", f"SELECT {quoted} FROM stale", _places_sql(name, key, f'"{DOCUMENT_AT}" >= {held}'))]
    if lookups:
        touched = f"{run_column[0]} IN (SELECT {run_column[0]} FROM touched)"
        changes.append(("runs", f"SELECT {run_column[0]} FROM touched", _runs_sql(name, lookups[0], touched)))
    index = places_of(database)
    patched = indexed_at is not None and index_generation(index) == indexed_at
    if patched:
        try:
            patch_places(con, index, generation, changes)
        except sqlite3.Error:
            patched = False
    if not patched:
        _write_places(con, name, database, key, lookups)
    con.execute(
        "DROP TABLE incoming; DROP TABLE stale; DROP TABLE fresh; DROP TABLE kept_keys; DROP TABLE IF EXISTS touched; "
        "DROP TABLE IF EXISTS served_changed; DROP TABLE IF EXISTS changed_keys; DROP TABLE IF EXISTS kept"
    )
    return removed, written


def _widen_to_runs(con: duckdb.DuckDBPyConnection, name: str, key: str, column: str, *, by_key: bool) -> None:
    """Make the patch's `stale` and `fresh` rows whole runs: every row of each `column` value a
    changed row has or had (and a row left without its document has), so that each such run is
    written again in one piece; the values go in `touched`. A run's rows now are `incoming`'s when
    it holds every source row; when it holds the changed keys' alone (`by_key`), they are those and
    the served rows of every other key (the source holds them unchanged), so that the source is
    not read whole."""
    quoted, run = f'"{key}"', f'"{column}"'
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE touched AS "
        f'SELECT {run} FROM "{name}" WHERE {quoted} IN (SELECT {quoted} FROM stale) OR "{DOCUMENT_AT}" IS NULL '
        f"UNION SELECT {run} FROM incoming WHERE {quoted} IN (SELECT {quoted} FROM fresh)"
    )
    current = "incoming"
    if by_key:
        current = (
            f"(SELECT {quoted}, {run} FROM incoming UNION ALL SELECT s.{quoted}, s.{run} "
            f'FROM "{name}" s ANTI JOIN changed_keys c ON s.{quoted} = c.{quoted})'
        )
    for target, rows in (("stale", f'"{name}"'), ("fresh", current)):
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {target} AS SELECT {quoted} FROM {target} "
            f"UNION SELECT {quoted} FROM {rows} WHERE {run} IN (SELECT {run} FROM touched)"
        )


def _table_names(con: duckdb.DuckDBPyConnection) -> set[str]:
    """The tables of the database being built (the connection's default)."""
    rows = con.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = current_database()").fetchall()
    return {row[0] for row in rows}


@contextmanager
def serving_storage(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Storage chosen for reading rows by key, while snapshot files are built through `con` or its
    cursors: no compression that reads slowly by key, and rows kept in the order they are inserted
    and scanned in (the engine may reorder them elsewhere, to save memory), which writes the
    documents of a run side by side. DuckDB holds these settings per database instance, not per
    cursor, so they are set once around builds that may run side by side."""
    [(preserving,)] = con.execute("SELECT current_setting('preserve_insertion_order')").fetchall()
    con.execute(f"SET disabled_compression_methods = '{UNSUITED_COMPRESSION}'")
    con.execute("SET preserve_insertion_order = true")
    try:
        yield
    finally:
        con.execute("RESET disabled_compression_methods")
        con.execute(f"SET preserve_insertion_order = {str(preserving).lower()}")


@contextmanager
def snapshot_database(
    path: Path, con: duckdb.DuckDBPyConnection, alias: str = SERVING_DATABASE, *, read_only: bool = False
) -> Iterator[duckdb.DuckDBPyConnection]:
    """`path` attached as `alias` and made the default database of `con` (in UTC: documents write
    timestamps with `Z`), checkpointed and detached at the end. Builds running side by side each
    use a cursor of their own (the default database and time zone are per cursor) and another
    `alias`. Build within `serving_storage`. `read_only` attaches a served file beside its readers
    (nothing to checkpoint)."""
    [(home,)] = con.execute("SELECT current_database()").fetchall()
    try:
        con.execute("SET TimeZone = 'UTC'")
        options = "READ_ONLY" if read_only else f"ROW_GROUP_SIZE {SERVING_ROW_GROUP_SIZE}"
        con.execute(f'ATTACH {string_literal(str(path))} AS "{alias}" ({options})')
        con.execute(f'USE "{alias}"')
        yield con
        if not read_only:
            _when_others_allow(con, f'CHECKPOINT "{alias}"')
    finally:
        # A statement that failed inside a transaction leaves it open, and then no DETACH succeeds:
        # the next attempt on this cursor (another base, or the build) could not attach the file.
        with suppress(duckdb.Error):
            con.execute("ROLLBACK")
        con.execute(f"USE {home}")
        _when_others_allow(con, f'DETACH DATABASE IF EXISTS "{alias}"')


CHECKPOINT_WAIT_SECONDS = 60
"""How long a build waits to checkpoint its file while the other build's write transaction is open."""


def _when_others_allow(con: duckdb.DuckDBPyConnection, statement: str) -> None:
    """Run `statement` (a CHECKPOINT or DETACH of a build's file). DuckDB refuses it while another cursor
    of the instance has a write transaction open (the build beside it, patching in one transaction):
    wait for that to end, rather than fail the table, or leave its file attached so that the next
    attempt cannot attach it."""
    deadline, pause = time.monotonic() + CHECKPOINT_WAIT_SECONDS, 0.01
    while True:
        try:
            con.execute(statement)
            return
        except duckdb.TransactionException as error:
            if "other write transactions" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.5)


PUBLISHING_THREADS = 2
"""Tables built side by side. Storing a table's rows in its DuckDB file runs mostly on one core
(Property's build did), so two builds fill the machine's cores."""


def publish_snapshot(
    lakehouse: Lakehouse,
    pointer_path: Path,
    tables: dict[str, tuple[str, ...]],
    update_id: str,
    connection: duckdb.DuckDBPyConnection,
) -> dict:
    """Bring a DuckDB file per served gold table (name -> key, then lookup columns) to gold, then point
    the pointer at them. Built through cursors of `connection` (the engine's, so publishing stays
    within its memory limit rather than adding a second one), two tables at a time, largest first.

    A table whose gold files are unchanged keeps its served file. A changed one is patched row by
    row to gold (documents are written only for rows that changed; only the keys gold's log says
    changed since the version the file records are compared) in a standby file or a copy of the
    served one (see `_bases`), or built anew when its columns or indexes differ or there is no
    such file. The pointer's `tables` says which happened to each. When a table fails, the others
    finish and the error is raised before the pointer moves.
    """
    started_at = datetime.now(UTC)
    snapshots = pointer_path.parent
    snapshots.mkdir(parents=True, exist_ok=True)
    previous = read_pointer(pointer_path) or {}
    check_layout(previous)  # files of a newer layout are neither patched nor served on as this layout
    served_before = previous.get("files", {})
    files, versions, fingerprints, outcome = {}, {}, {}, {}
    verified_before, verified = previous.get("verified_versions", {}), {}
    changed: list[tuple[str, DeltaTable, str, list[str]]] = []
    for qualified, (key, *lookups) in tables.items():
        table = lakehouse.table(qualified)
        if table is None:
            continue
        name = qualified.split(".", 1)[1]
        versions[qualified], fingerprints[qualified] = table.version(), lakehouse.fingerprint(qualified)
        served = served_before.get(name)
        unchanged = previous.get("fingerprints", {}).get(qualified) == fingerprints[qualified]
        if served and unchanged and is_complete(snapshots / served):
            files[name], outcome[name] = served, "unchanged"
            if name in verified_before:
                verified[name] = verified_before[name]
        else:
            changed.append((name, table, key, lookups))

    def publish(name: str, table: DeltaTable, key: str, lookups: list[str]) -> None:
        building = snapshots / name / f".{update_id}.duckdb.building"
        building.parent.mkdir(exist_ok=True)
        served = served_before.get(name)
        bases = _bases(snapshots, name, served, set(served_before.values()))
        with connection.cursor() as cursor:
            only_copy = (
                served is not None and bases[:1] == [(snapshots / served, True)] and is_complete(snapshots / served)
            )
            reflects = verified_before.get(name)
            if only_copy and _holds_gold_rows(snapshots / served, table, key, lookups, cursor, reflects):
                # Only a copy of the served file could be patched, and the patch would change no row.
                files[name], outcome[name], verified[name] = served, KEPT, table.version()
                return
            outcome[name] = _publish_table(building, bases, table, key, lookups, cursor, reflects)
        target = Path(name) / f"{update_id}.duckdb"
        _move(building, snapshots / target)
        files[name] = target.as_posix()

    changed.sort(key=lambda item: _data_bytes(item[1]), reverse=True)
    with serving_storage(connection), ThreadPoolExecutor(PUBLISHING_THREADS) as pool:
        for done in [pool.submit(publish, *item) for item in changed]:
            done.result()
    pointer = write_pointer(
        pointer_path,
        dict(sorted(files.items())),
        update_id,
        versions,
        fingerprints,
        dict(sorted(outcome.items())),
        previous_files=served_before,
        started_at=started_at,
        verified=verified,
    )
    legacy = [previous["file"]] if "file" in previous else []
    _remove_unused_files(snapshots, {*files.values(), *served_before.values(), *legacy})
    return pointer


def _data_bytes(table: DeltaTable) -> int:
    """The size of a Delta table's current data files (what its build has to read)."""
    return sum(os.path.getsize(uri) for uri in table.file_uris())


def _bases(snapshots: Path, name: str, served: str | None, named: set[str]) -> list[tuple[Path, bool]]:
    """Files a new snapshot of table `name` may start from, best first, each with whether it must be
    copied: the newest file of this table that the served pointer does not name and no reader holds
    (normally the one it named before: patched in place, no copy), then the served file (copied:
    readers have it open). None when no pointer names files (`named`: a fresh start).

    An API process keeps the snapshot it served last attached until its next request, which reads
    the pointer again: the file named before is held by a process idle since the last publish, and
    by a request begun before it and still running. `_held` asks DuckDB."""
    if not named:
        return []
    directory = snapshots / name
    others = sorted(
        (
            path
            for path in (*directory.glob("*.duckdb"), *directory.glob(".*.building"))
            if f"{name}/{path.name}" != served
        ),
        key=lambda path: path.stat().st_mtime,
        reverse=True,
    )
    standby = next((path for path in others if not _held(path)), None)
    bases = [(standby, False)] if standby else []
    if served and (snapshots / served).exists():
        bases.append((snapshots / served, True))
    return bases


def _held(database: Path) -> bool:
    """Whether a reader has the snapshot file open: DuckDB refuses to open it for writing at its own
    path while a connection of this process has it attached (its register of open files) or another
    process does (its file lock). A file it cannot open for another reason (damaged) is not held: its
    patch fails, and it is discarded for the next base. Readers attach snapshot files (`open_snapshot`
    does): a file this process opened with `duckdb.connect` itself is not seen."""
    try:
        duckdb.connect(str(database)).close()
    except duckdb.Error as error:
        return isinstance(error, duckdb.ResourceInUseException) or "Could not set lock on file" in str(error)
    return False


def _publish_table(
    building: Path,
    bases: list[tuple[Path, bool]],
    table: DeltaTable,
    key: str,
    lookups: Sequence[str],
    cursor: duckdb.DuckDBPyConnection,
    served_reflects: int | None = None,
) -> str:
    """Write gold `table` into the file `building` through `cursor` (one of this build's own), from
    the first base that can be patched, else from nothing; returns what was done. A base that cannot
    be patched (damaged, unreadable by this DuckDB, locked by a reader in another process, of an
    older layout, missing an index) is passed over for the next, so a rerun converges and a standby
    left unfit does not cost a build when the served file can be copied and patched. A copy of the
    served file is patched from `served_reflects` when given: a later gold version than the file
    records, which a publish that kept the file found its rows equal to."""
    name = building.parent.name

    def patch_or_build(build: bool, reflects: int | None = None) -> str | None:
        """Patch the file in `building` to gold; one that cannot be is built anew there if `build`."""
        with snapshot_database(building, cursor, alias=f"serving_{name}") as con:
            register_delta(con, "gold_source", table)
            since = _changed_since(con, table, reflects)
            changes = Changes("gold_changed", "gold_changed_written") if since is not None else None
            patched = patch_serving_table(con, name, "gold_source", building, key, lookups, changes)
            if patched is None and build:
                con.execute(f'DROP TABLE IF EXISTS "{name}"')
                create_serving_table(con, name, "gold_source", building, key, lookups)
            if patched is not None or build:
                _record_source_version(con, table)
            con.execute("DROP VIEW gold_source")
        release_preallocation(building, places_of(building), documents_of(building))
        if patched is None:
            return "built" if build else None
        how = "patched" if since is None else f"patched by key since gold version {since}"
        return f"{how}: {patched[0]} rows removed, {patched[1]} written"

    for base, copy in bases:
        if base == building:
            continue
        _discard(building)
        (_copy if copy else _move)(base, building)
        try:
            done = patch_or_build(build=False, reflects=served_reflects if copy else None)
        except duckdb.Error as error:
            LOG.warning("%s: the base %s could not be patched (%s); trying the next", name, base, error)
            continue
        if done is not None:
            return done
    _discard(building)
    return patch_or_build(build=True)


KEPT = "kept: gold's changes since the version it records leave its rows as they are"
"""The outcome of a served file kept for a gold table whose commits changed no row it serves."""


def _holds_gold_rows(
    database: Path,
    table: DeltaTable,
    key: str,
    lookups: Sequence[str],
    cursor: duckdb.DuckDBPyConnection,
    reflects: int | None,
) -> bool:
    """Whether the served snapshot file `database` already holds gold `table`'s rows: it is a serving
    table of gold's columns and indexes, and every key gold's commits may have changed since the
    version it reflects (the one it records, or the later `reflects` an earlier check found it equal
    to) holds the same rows (by row hash, of the same column types) in both. A view refreshed by key
    and merged on read commits the rows it recomputed even when they are the ones it had (gold Media
    after a listing's price changed): keeping the served file then spares a copy of it. Read-only,
    beside the API's readers; False when it cannot tell (no recorded version, changes no longer in
    gold's log, a file DuckDB cannot attach)."""
    name = database.parent.name
    try:
        with snapshot_database(database, cursor, alias=f"kept_{name}", read_only=True) as con:
            if _changed_since(con, table, reflects) is None:
                return False
            register_delta(con, "gold_source", table)
            columns = column_types(con, "gold_source")
            if not _is_served_shape(con, name, database, key, lookups, columns) or read_blocks(con) is None:
                return False
            # A row hash sees neither column names (the shape above) nor types: 1 as INTEGER and as BIGINT hash alike.
            if column_types(con, "gold_changed_written") not in (columns, []):
                return False
            changes = Changes("gold_changed", "gold_changed_written")
            compare_with_served(con, name, "gold_source", key, lookups, changes)
            differing = "SELECT (SELECT count(*) FROM stale) + (SELECT count(*) FROM fresh)"
            return con.execute(differing).fetchall() == [(0,)]
    except duckdb.Error as error:
        # A file that cannot be compared is passed to the patch, which passes over a base it cannot patch.
        LOG.warning("%s: the served file %s could not be compared with gold (%s)", name, database, error)
        return False


def _changed_since(con: duckdb.DuckDBPyConnection, table: DeltaTable, reflects: int | None = None) -> int | None:
    """The gold version the snapshot file being built reflects, with what gold's commits changed since
    registered as `gold_changed` (`register_changes_since`); None when the file records no version of
    this gold table (written by a version before it did, or from a table since dropped and created
    again) or the changes are no longer all in gold's log and files. `reflects`: a later version the
    file's rows are known to equal (a kept served file records the version it was last written at)."""
    if SOURCE_VERSION_TABLE not in _table_names(con):
        return None
    row = con.execute(f'SELECT table_id, version FROM "{SOURCE_VERSION_TABLE}"').fetchone()
    if row is None or row[0] != table.metadata().id:
        return None
    since = row[1] if reflects is None else max(row[1], reflects)
    return since if register_changes_since(con, "gold_changed", table, since) else None


def _record_source_version(con: duckdb.DuckDBPyConnection, table: DeltaTable) -> None:
    """Record in the snapshot file being built the gold table and version its rows now reflect. Written
    after the rows: a file whose writer stopped in between records an older version, whose changes the
    next patch compares again, which is safe."""
    con.execute(
        f'CREATE OR REPLACE TABLE "{SOURCE_VERSION_TABLE}" AS SELECT ?::VARCHAR AS table_id, ?::BIGINT AS version',
        [table.metadata().id, table.version()],
    )


def _companions(database: Path) -> list[Path]:
    """The files that go with a snapshot file: DuckDB's write-ahead log, the documents file, the
    places index and the files SQLite and its writer keep beside it."""
    return [database.with_name(database.name + ".wal"), documents_of(database), *index_files(places_of(database))]


def _move(database: Path, target: Path) -> None:
    """Rename a snapshot file with its companions."""
    for companion, moved in zip(_companions(database), _companions(target), strict=True):
        if companion.exists():
            os.replace(companion, moved)
    os.replace(database, target)


def _copy(database: Path, target: Path) -> None:
    """Copy a served snapshot file (checkpointed: it has no log) and its places index, as clones
    sharing their blocks where the file system can (`clone_or_copy`), and link its documents file
    (a patch only appends to it)."""
    clone_or_copy(database, target)
    if places_of(database).exists():
        clone_or_copy(places_of(database), places_of(target))
    if documents_of(database).exists():
        link_or_copy(documents_of(database), documents_of(target))


def _discard(database: Path) -> None:
    """Remove a snapshot file and its companions."""
    for path in (database, *_companions(database)):
        path.unlink(missing_ok=True)


def _remove_unused_files(snapshots: Path, in_use: set[str]) -> None:
    """Per table keep the files the new and the previous pointer name (readers may still hold the
    previous ones; the next publish patches those in place once none does) and the newest other one
    (a file a reader held, patched when the previous one is held in turn); remove the rest
    (and snapshot files of the single-file layout that the previous pointer does not name)."""
    for directory in (path for path in snapshots.iterdir() if path.is_dir()):
        others = sorted(
            (p for p in directory.glob("*.duckdb") if f"{directory.name}/{p.name}" not in in_use),
            key=lambda path: path.stat().st_mtime,
            reverse=True,
        )
        for path in [*others[1:], *directory.glob(".*.building")]:
            _discard(path)
        for companion in (*directory.glob("*.documents"), *directory.glob("*.places*")):
            if not (directory / companion.name.rsplit(".", 1)[0]).exists():
                companion.unlink()
    for path in snapshots.glob("gold-*.duckdb"):
        if path.name not in in_use:
            _discard(path)
