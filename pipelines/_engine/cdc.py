"""AUTO CDC on the embedded engine: change rows applied to a Delta target by key and sequence.

SCD type 1 keeps the newest version of each key. A change applies only when its
sequence is newer than what the target holds, so a late, older event never overwrites
a newer one; deleted keys leave a tombstone (a hidden side table) so a late, older
upsert cannot bring them back. A batch is merged into the target, or, when it has keys
enough to touch most of the target's files, the target is written anew with the same rows.

SCD type 2 keeps every version with `__START_AT` / `__END_AT` (the sequence values that
opened and closed it). The history of each key a batch touches is rebuilt from its
stored versions and the new events in sequence order, so events arriving out of order
land in their place; `track_history_*` limits which columns open a new version.
"""

from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa

from pipelines._engine import arrow
from pipelines._engine.arrow import rows_table
from pipelines._engine.errors import PipelineError
from pipelines._engine.key_index import Layout, key_index
from pipelines._engine.lakehouse import (
    FILE_COLUMN,
    REWRITE_FRACTION,
    ROW_COLUMN,
    WRITER,
    Lakehouse,
    bind_arrow,
    column_types,
    commit_properties,
    register_delta,
)
from pipelines._engine.sql_text import Translate, quote
from pipelines.declaration import Dataset

IS_DELETE = "__is_delete"
START_AT, END_AT = "__START_AT", "__END_AT"
TOMBSTONES = "__tombstones"
TOMBSTONE_RELATION = "cdc_tombstones"
CDC_TARGET, CDC_APPLIED = "cdc_target", "cdc_applied"
CDC_TARGET_POSITIONS = "cdc_target_positions"
CDC_EVENTS_KEYS, CDC_REPLACED_ROWS = "cdc_events_keys", "cdc_replaced_rows"
CDC_PYTHON_ROWS, ORDINAL = "cdc_python_rows", "__ordinal"
TARGET_SEQUENCE, MATCHED = "__target_sequence", "__matched"


@dataclass
class CdcMetrics:
    upserted: int = 0
    deleted: int = 0
    write: dict | None = None
    """How the target was written: `mode` merge-on-read (with the rows marked deleted and added), rewrite
    (why), or merge (delta-rs's, when the changes bring other columns)."""
    changed: str | None = None
    """A temporary table of the events applied to an existing SCD type 1 target (its columns plus
    `__is_delete`): every key the update changed, with its new row unless deleted. None when the
    target was written whole, or its columns differ from the events'."""


def keys_match(keys: list[str], left: str, right: str) -> str:
    """SQL true when rows aliased `left` and `right` have the same keys (NULL keys match nothing)."""
    return " AND ".join(f"{left}.{quote(k)} = {right}.{quote(k)}" for k in keys)


def tombstones_of(dataset: Dataset) -> str:
    return dataset.name + TOMBSTONES


def target_columns(con: duckdb.DuckDBPyConnection, dataset: Dataset, changes: str) -> list[str]:
    cdc = dataset.cdc
    columns = [row[0] for row in con.execute(f"DESCRIBE {changes}").fetchall()]
    if cdc.column_list:
        chosen = [c for c in columns if c in cdc.column_list]
    else:
        chosen = [c for c in columns if c not in (cdc.except_column_list or ())]
    for required in (*cdc.keys, cdc.sequence_by):
        if required not in columns:
            raise ValueError(
                f"{dataset.name}: AUTO CDC column {required!r} is not in the change feed ({', '.join(columns)})"
            )
        if required not in chosen:
            chosen.append(required)
    return chosen


def _events_sql(
    con: duckdb.DuckDBPyConnection, dataset: Dataset, changes: str, translate: Translate, *, latest_only: bool
) -> str:
    """The change rows with their target columns and a delete flag; for SCD1 only the newest per key."""
    cdc = dataset.cdc
    columns = ", ".join(quote(c) for c in target_columns(con, dataset, changes))
    delete_when = translate(cdc.apply_as_deletes) if cdc.apply_as_deletes else "false"
    keys = ", ".join(quote(k) for k in cdc.keys)
    newest = (
        f" QUALIFY row_number() OVER (PARTITION BY {keys} ORDER BY {quote(cdc.sequence_by)} DESC, {IS_DELETE} DESC) = 1"
        if latest_only
        else ""
    )
    return (
        f"SELECT * FROM (SELECT {columns}, coalesce(({delete_when}), false) AS {IS_DELETE} FROM {changes}) "
        f"WHERE {quote(cdc.sequence_by)} IS NOT NULL{newest}"
    )


def apply_changes(
    con: duckdb.DuckDBPyConnection,
    lakehouse: Lakehouse,
    dataset: Dataset,
    changes: str,
    *,
    full_refresh: bool,
    metadata: dict,
    checkpoints: dict[str, int],
    translate: Translate,
) -> CdcMetrics:
    """Apply the change rows of relation `changes` to `dataset`'s target by key (`translate` renders the
    declaration's Spark SQL conditions for DuckDB)."""
    if not full_refresh:
        _require_declared_columns(lakehouse, dataset)
    apply = _apply_scd2 if dataset.cdc.stored_as_scd_type == 2 else _apply_scd1
    return apply(
        con,
        lakehouse,
        dataset,
        changes,
        full_refresh=full_refresh,
        metadata=metadata,
        checkpoints=checkpoints,
        translate=translate,
    )


def _require_declared_columns(lakehouse: Lakehouse, dataset: Dataset) -> None:
    """The target and its tombstones hold the declared keys and sequence column, or the update asks
    for a full refresh (they were written under an earlier declaration; a merge would fail with
    delta-rs's schema error)."""
    for name in (dataset.name, tombstones_of(dataset)):
        table = lakehouse.table(name)
        held = set(table.schema().to_arrow().names) if table is not None else None
        missing = [c for c in (*dataset.cdc.keys, dataset.cdc.sequence_by) if held is not None and c not in held]
        if missing:
            raise PipelineError(
                f"{name} holds no {', '.join(missing)} (written by an earlier declaration of {dataset.name}); "
                f"run with --full-refresh-selection {dataset.name}"
            )


def _apply_scd1(
    con,
    lakehouse: Lakehouse,
    dataset: Dataset,
    changes: str,
    *,
    full_refresh: bool,
    metadata: dict,
    checkpoints: dict[str, int],
    translate: Translate,
) -> CdcMetrics:
    """The batch stays in DuckDB (which spills under its memory limit); only keys travel as Arrow,
    and new rows stream into the target. When every key occurs once (a full refresh, most
    increments) the newest-per-key step is skipped, and events written to a new target (a full
    refresh, a first run) stay a view of the batch.

    Into an existing target, the events that apply (newer than the key's row, or a new key) are
    kept in a temporary table the metrics name, for what reads the target by key downstream."""
    cdc = dataset.cdc
    keys, sequence = list(cdc.keys), cdc.sequence_by
    key_list = ", ".join(quote(k) for k in keys)
    repeated = con.execute(f"SELECT count(*) > count(DISTINCT ({key_list})) FROM {changes}").fetchall()[0][0]
    events_sql = _events_sql(con, dataset, changes, translate, latest_only=repeated)
    stones = None if full_refresh else lakehouse.table(tombstones_of(dataset))
    if stones is not None:
        register_delta(con, TOMBSTONE_RELATION, stones)
        events_sql = _newer_than_tombstones(events_sql, keys, sequence)
    target = None if full_refresh else lakehouse.table(dataset.name)
    own = dataset.name.replace(".", "__")
    # Merged into a target, the events are read four times (deletes, upserts, the target's rows they
    # match, those they replace): computed once, not through the batch's views at each read.
    events, kind = f"cdc_events__{own}", "TABLE" if repeated or target is not None else "VIEW"
    # The target's rows of the events' keys (found through its key index or in one scan of its files:
    # what the events are compared with, and where the rows they replace lie), and the positions of
    # those replaced.
    matched, replaced = f"cdc_matched__{own}", f"cdc_replaced__{own}"
    con.execute(f"CREATE OR REPLACE TEMP {kind} {events} AS {events_sql}")
    try:
        marks = ", ".join(quote(c) for c in (*keys, sequence))
        deletes = con.sql(f"SELECT {marks} FROM {events} WHERE {IS_DELETE}").to_arrow_table()
        upserted = con.sql(f"SELECT {marks} FROM {events} WHERE NOT {IS_DELETE}").to_arrow_table()
        _record_tombstones(con, lakehouse, dataset, events, deletes, upserted, full_refresh=full_refresh)
        if target is None:
            rows = f"(SELECT * EXCLUDE ({IS_DELETE}) FROM {events} WHERE NOT {IS_DELETE})"
            lakehouse.replace_with_relation(con, dataset.name, rows, metadata=metadata, checkpoints=checkpoints)
            why = "a full refresh" if full_refresh else "the target does not exist yet"
            return CdcMetrics(upserted=upserted.num_rows, deleted=0, write={"mode": "rewrite", "reason": why})
        register_delta(con, CDC_TARGET_POSITIONS, target, positions=True)
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW {CDC_TARGET} AS SELECT * EXCLUDE ({FILE_COLUMN}, {ROW_COLUMN}) "
            f"FROM {CDC_TARGET_POSITIONS}"
        )
        located = _locate_matched(con, lakehouse, dataset, events, matched)
        applied, same_shape = _applied_events(con, dataset, events, matched)
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {replaced} AS SELECT t.{FILE_COLUMN}, t.{ROW_COLUMN} "
            f"FROM {matched} t SEMI JOIN {applied} a ON {keys_match(keys, 'a', 't')}"
        )
        [(applying,)] = con.execute(f"SELECT count(*) FROM {applied}").fetchall()
        [(replacing,)] = con.execute(f"SELECT count(*) FROM {replaced}").fetchall()
        held = lakehouse.row_count(dataset.name)
        if not same_shape:
            # A merge adds the columns the events bring; what reads the target by key reads it whole.
            batch = con.sql(f"SELECT * FROM {events}").to_arrow_table()
            con.execute(f"DROP TABLE {applied}")
        elif not applying or replacing >= held * REWRITE_FRACTION:
            metrics = _rewrite_scd1(con, lakehouse, dataset, applied, metadata=metadata, checkpoints=checkpoints)
            why = f"{replacing} of the target's {held} rows replaced" if applying else "no change applies"
            metrics.changed, metrics.write = applied, {"mode": "rewrite", "reason": why}
            return metrics
        else:
            metrics = _merge_on_read(
                con, lakehouse, dataset, applied, replaced, metadata=metadata, checkpoints=checkpoints
            )
            metrics.changed, metrics.write["located_by"] = applied, located
            return metrics
    finally:
        con.execute(f"DROP {kind} IF EXISTS {events}")
        con.execute(f"DROP VIEW IF EXISTS {CDC_TARGET}")
        con.execute(f"DROP VIEW IF EXISTS {CDC_TARGET_POSITIONS}")
        con.execute(f"DROP TABLE IF EXISTS {matched}")
        con.execute(f"DROP TABLE IF EXISTS {replaced}")
        if stones is not None:
            con.execute(f"DROP VIEW IF EXISTS {TOMBSTONE_RELATION}")
    columns = [name for name in batch.column_names if name != IS_DELETE]
    assignments = {quote(c): f"s.{quote(c)}" for c in columns}
    on_keys = keys_match(keys, "t", "s")
    newer = f"s.{quote(sequence)} > t.{quote(sequence)}"
    result = (
        target.merge(
            batch,
            predicate=on_keys,
            source_alias="s",
            target_alias="t",
            merge_schema=True,
            writer_properties=WRITER,
            commit_properties=commit_properties(metadata, checkpoints),
        )
        .when_matched_delete(predicate=f"s.{IS_DELETE} AND {newer}")
        .when_matched_update(updates=assignments, predicate=f"NOT s.{IS_DELETE} AND {newer}")
        .when_not_matched_insert(updates=assignments, predicate=f"NOT s.{IS_DELETE}")
        .execute()
    )
    lakehouse.committed(dataset.name)
    return CdcMetrics(
        upserted=result["num_target_rows_inserted"] + result["num_target_rows_updated"],
        deleted=result["num_target_rows_deleted"],
        write={"mode": "merge", "reason": "the changes have other columns than the target"},
    )


def _locate_matched(
    con: duckdb.DuckDBPyConnection, lakehouse: Lakehouse, dataset: Dataset, events: str, matched: str
) -> str:
    """Keep in `matched` the target's rows of the events' keys (registered as CDC_TARGET_POSITIONS):
    their position, keys and sequence. Through the target's key index when it is large enough to have
    one and the events' key has the target's type (a key of another type compares as DuckDB casts it),
    else in one scan of its files. Returns which ("key index" or "scan")."""
    keys, sequence = list(dataset.cdc.keys), dataset.cdc.sequence_by
    index = key_index(lakehouse, dataset.name, Layout((keys[0],), (sequence,))) if len(keys) == 1 else None
    if index is not None and dict(column_types(con, events))[keys[0]] != dict(column_types(con, CDC_TARGET))[keys[0]]:
        index = None
    if index is not None:
        wanted = con.sql(f"SELECT DISTINCT {quote(keys[0])} FROM {events}").to_arrow_table().column(0)
        bind_arrow(con, f"{matched}__located", index.locate(keys[0], wanted))
        con.execute(f"CREATE OR REPLACE TEMP TABLE {matched} AS SELECT * FROM {matched}__located")
        con.execute(f"DROP VIEW {matched}__located")
        return "key index"
    marks = ", ".join(quote(c) for c in (*keys, sequence))
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {matched} AS SELECT t.{FILE_COLUMN}, t.{ROW_COLUMN}, {marks} "
        f"FROM {CDC_TARGET_POSITIONS} t SEMI JOIN (SELECT {', '.join(quote(k) for k in keys)} FROM {events}) e "
        f"ON {keys_match(keys, 'e', 't')}"
    )
    return "scan"


def _merge_on_read(
    con: duckdb.DuckDBPyConnection,
    lakehouse: Lakehouse,
    dataset: Dataset,
    applied: str,
    replaced: str,
    *,
    metadata: dict,
    checkpoints: dict[str, int],
) -> CdcMetrics:
    """Apply the events to the target: the rows they replace (`replaced`: positions in the target's
    files) marked deleted by deletion vectors, their new rows written to a new file, in one commit
    carrying the checkpoints. The target's other rows are not read past their keys, nor copied."""
    [(upserted, deleted)] = con.execute(
        f"SELECT count(*) FILTER (NOT {IS_DELETE}), count(*) FILTER ({IS_DELETE}) FROM {applied}"
    ).fetchall()
    [(marked,)] = con.execute(f"SELECT count(*) FROM {replaced}").fetchall()
    rows = f"(SELECT * EXCLUDE ({IS_DELETE}) FROM {applied} WHERE NOT {IS_DELETE})"
    written = lakehouse.write_files(con, dataset.name, rows, per_thread=False) if upserted else None
    lakehouse.delete_and_add(con, dataset.name, replaced, written, metadata=metadata, checkpoints=checkpoints)
    write = {"mode": "merge-on-read", "rows_marked_deleted": marked, "rows_added": upserted}
    return CdcMetrics(upserted=upserted, deleted=deleted, write=write)


def _applied_events(con: duckdb.DuckDBPyConnection, dataset: Dataset, events: str, matched: str) -> tuple[str, bool]:
    """The events that change the target (registered as CDC_TARGET; `matched` holds its rows of the
    events' keys), in a temporary table: a match applies only when newer, a delete without a match
    does nothing. Also whether the events carry exactly the target's columns and types (not so when
    the declaration changed since it was written)."""
    keys, sequence = list(dataset.cdc.keys), dataset.cdc.sequence_by
    key_list = ", ".join(quote(k) for k in keys)
    applied = f"{CDC_APPLIED}__{dataset.name.replace('.', '__')}"
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {applied} AS SELECT e.* FROM {events} e "
        f"LEFT JOIN (SELECT {key_list}, {quote(sequence)} AS {TARGET_SEQUENCE}, true AS {MATCHED} "
        f"FROM {matched}) t ON {keys_match(keys, 'e', 't')} "
        f"WHERE CASE WHEN t.{MATCHED} THEN e.{quote(sequence)} > t.{TARGET_SEQUENCE} ELSE NOT e.{IS_DELETE} END"
    )
    event_types = [column for column in column_types(con, applied) if column[0] != IS_DELETE]
    return applied, sorted(event_types) == sorted(column_types(con, CDC_TARGET))


def _rewrite_scd1(
    con: duckdb.DuckDBPyConnection,
    lakehouse: Lakehouse,
    dataset: Dataset,
    applied: str,
    *,
    metadata: dict,
    checkpoints: dict[str, int],
) -> CdcMetrics:
    """Apply the events by writing the target (registered as CDC_TARGET) anew: its rows the applied
    events do not replace, plus their new rows. The same rows as a merge, in one overwrite commit
    carrying the checkpoints; only when the events have the target's columns and types (a merge keeps
    a column the events lack, and its type)."""
    keys = list(dataset.cdc.keys)
    [(upserted, deleted)] = con.execute(
        f"SELECT count(*) FILTER (NOT {IS_DELETE}), count(*) FILTER ({IS_DELETE}) FROM {applied}"
    ).fetchall()
    if upserted or deleted:
        replaced = keys_match(keys, "a", "t")
        rows = (
            f"(SELECT t.* FROM {CDC_TARGET} t WHERE NOT EXISTS (SELECT 1 FROM {applied} a WHERE {replaced}) "
            f"UNION ALL BY NAME SELECT * EXCLUDE ({IS_DELETE}) FROM {applied} WHERE NOT {IS_DELETE})"
        )
        lakehouse.replace_with_relation(con, dataset.name, rows, metadata=metadata, checkpoints=checkpoints)
    else:
        empty = lakehouse.table(dataset.name).schema().to_arrow().empty_table()
        lakehouse.append(dataset.name, empty, metadata=metadata, checkpoints=checkpoints)
    return CdcMetrics(upserted=upserted, deleted=deleted)


def _newer_than_tombstones(events_sql: str, keys: list[str], sequence: str) -> str:
    """`events_sql` without upserts no newer than their key's tombstone: events from before a delete, arriving late."""
    on = keys_match(keys, "e", "t")
    return (
        f"SELECT e.* FROM ({events_sql}) e WHERE e.{IS_DELETE} OR NOT EXISTS "
        f"(SELECT 1 FROM {TOMBSTONE_RELATION} t WHERE {on} AND e.{quote(sequence)} <= t.{quote(sequence)})"
    )


def _record_tombstones(
    con: duckdb.DuckDBPyConnection,
    lakehouse: Lakehouse,
    dataset: Dataset,
    events: str,
    deletes: pa.Table,
    upserts: pa.Table,
    *,
    full_refresh: bool,
) -> None:
    """Remember each deleted key's delete sequence; forget it when a newer upsert revives the key.
    Events that neither delete nor revive a key leave the tombstones unread: no merge.

    Written before the target (whose commit carries the checkpoint): a failed update re-reads
    the same batch and this merge is idempotent.
    """
    keys, sequence = list(dataset.cdc.keys), dataset.cdc.sequence_by
    name = tombstones_of(dataset)
    stones = None if full_refresh else lakehouse.table(name)
    if stones is None:
        if full_refresh or deletes.num_rows:
            lakehouse.overwrite(name, deletes)
        return
    if not deletes.num_rows and not _revives(con, events, keys):
        return
    flagged = pa.concat_tables(
        [
            deletes.append_column(IS_DELETE, arrow.array([True] * deletes.num_rows, pa.bool_())),
            upserts.select([*keys, sequence]).append_column(
                IS_DELETE, arrow.array([False] * upserts.num_rows, pa.bool_())
            ),
        ],
        promote_options="permissive",
    )
    on_keys = keys_match(keys, "t", "s")
    newer = f"s.{quote(sequence)} > t.{quote(sequence)}"
    assignments = {quote(c): f"s.{quote(c)}" for c in (*keys, sequence)}
    (
        stones.merge(
            flagged, predicate=on_keys, source_alias="s", target_alias="t", merge_schema=True, writer_properties=WRITER
        )
        .when_matched_update(updates=assignments, predicate=f"s.{IS_DELETE} AND {newer}")
        .when_matched_delete(predicate=f"NOT s.{IS_DELETE} AND {newer}")
        .when_not_matched_insert(updates=assignments, predicate=f"s.{IS_DELETE}")
        .execute()
    )
    lakehouse.committed(name)


def _revives(con: duckdb.DuckDBPyConnection, events: str, keys: list[str]) -> bool:
    """Whether an upsert of `events` has a tombstoned key (registered as TOMBSTONE_RELATION): only
    upserts newer than their tombstone are left in the events."""
    [(revives,)] = con.execute(
        f"SELECT EXISTS (SELECT 1 FROM {events} e SEMI JOIN {TOMBSTONE_RELATION} t ON {keys_match(keys, 'e', 't')} "
        f"WHERE NOT e.{IS_DELETE})"
    ).fetchall()
    return revives


def _python_rows(con: duckdb.DuckDBPyConnection, rows: pa.Table) -> list[dict]:
    """Arrow rows as dicts of Python values, in their order, through DuckDB: pyarrow's `to_pylist`
    imports pandas on the first timestamp with a time zone. Ordered by position: the update's
    connection does not keep insertion order, and the history rebuilt from events needs it."""
    taken, ordinal = {name.lower() for name in rows.column_names}, ORDINAL
    while ordinal in taken:  # DuckDB names columns case-insensitively
        ordinal += "_"
    positions = arrow.array(np.arange(rows.num_rows, dtype=np.int64), pa.int64())
    bind_arrow(con, CDC_PYTHON_ROWS, rows.append_column(ordinal, positions))
    found = con.execute(f"SELECT * EXCLUDE ({ordinal}) FROM {CDC_PYTHON_ROWS} ORDER BY {ordinal}")
    columns = [column[0] for column in found.description]
    values = [dict(zip(columns, row, strict=True)) for row in found.fetchall()]
    con.execute(f"DROP VIEW {CDC_PYTHON_ROWS}")
    return values


def _apply_scd2(
    con,
    lakehouse: Lakehouse,
    dataset: Dataset,
    changes: str,
    *,
    full_refresh: bool,
    metadata: dict,
    checkpoints: dict[str, int],
    translate: Translate,
) -> CdcMetrics:
    """Rebuild the history of every key the batch touches; keep the other keys' rows as they are."""
    cdc = dataset.cdc
    keys, sequence = list(cdc.keys), cdc.sequence_by
    # In sequence order, a delete after an upsert of the same sequence: it wins the tie, as in SCD type 1.
    ordered = f"ORDER BY {quote(sequence)}, {IS_DELETE}"
    events = con.sql(
        f"SELECT * FROM ({_events_sql(con, dataset, changes, translate, latest_only=False)}) {ordered}"
    ).to_arrow_table()
    columns = [name for name in events.column_names if name != IS_DELETE]
    tracked = _tracked_columns(dataset, columns)
    target = None if full_refresh else lakehouse.table(dataset.name)
    incoming: dict[tuple, list[dict]] = {}
    for event in _python_rows(con, events):
        incoming.setdefault(tuple(event[k] for k in keys), []).append(event)
    history: dict[tuple, list[dict]] = {}
    stored = None
    if target is not None:
        # Only the touched keys' stored versions are read, with their positions (merge-on-read); a NULL
        # key is one key, as the history rebuilt in Python groups it.
        register_delta(con, CDC_TARGET_POSITIONS, target, positions=True)
        bind_arrow(con, CDC_EVENTS_KEYS, events.select(keys))
        stored = con.sql(
            f"SELECT * FROM {CDC_TARGET_POSITIONS} t SEMI JOIN {CDC_EVENTS_KEYS} e "
            f"ON {' AND '.join(f't.{quote(k)} IS NOT DISTINCT FROM e.{quote(k)}' for k in keys)}"
        ).to_arrow_table()
        con.execute(f"DROP VIEW {CDC_EVENTS_KEYS}")
        for row in _python_rows(con, stored.drop_columns([FILE_COLUMN, ROW_COLUMN])):
            history.setdefault(tuple(row[k] for k in keys), []).append(row)
    try:
        rebuilt: list[dict] = []
        closed = 0
        for key, new in incoming.items():
            versions, closes = _rebuild(history.get(key, []), new, sequence, columns, tracked)
            rebuilt.extend(versions)
            closed += closes
        schema = _scd2_schema(events, pa.schema(target.schema().to_arrow()) if target else None, sequence)
        table = rows_table(rebuilt, schema)
        metrics = CdcMetrics(upserted=len(rebuilt), deleted=closed)
        if target is not None:
            bind_arrow(con, CDC_REPLACED_ROWS, stored.select([FILE_COLUMN, ROW_COLUMN]))
        if target is None or stored.num_rows >= lakehouse.row_count(dataset.name) * REWRITE_FRACTION:
            if target is not None:
                kept = con.sql(
                    f"SELECT * EXCLUDE ({FILE_COLUMN}, {ROW_COLUMN}) FROM {CDC_TARGET_POSITIONS} t "
                    f"ANTI JOIN {CDC_REPLACED_ROWS} r "
                    f"ON t.{FILE_COLUMN} = r.{FILE_COLUMN} AND t.{ROW_COLUMN} = r.{ROW_COLUMN}"
                ).to_arrow_table()
                table = pa.concat_tables([arrow.conformed(kept, schema), table])
            lakehouse.overwrite(dataset.name, table, metadata=metadata, checkpoints=checkpoints)
            why = "a full refresh" if target is None else "a quarter of it changed"
            metrics.write = {"mode": "rewrite", "reason": why}
            return metrics
        written = lakehouse.write_arrow(dataset.name, table) if table.num_rows else None
        lakehouse.delete_and_add(
            con, dataset.name, CDC_REPLACED_ROWS, written, metadata=metadata, checkpoints=checkpoints
        )
        metrics.write = {"mode": "merge-on-read", "rows_marked_deleted": stored.num_rows, "rows_added": table.num_rows}
        return metrics
    finally:
        con.execute(f"DROP VIEW IF EXISTS {CDC_TARGET_POSITIONS}; DROP VIEW IF EXISTS {CDC_REPLACED_ROWS}")


def _tracked_columns(dataset: Dataset, columns: list[str]) -> list[str]:
    cdc = dataset.cdc
    data = [c for c in columns if c not in (*cdc.keys, cdc.sequence_by)]
    if cdc.track_history_column_list:
        return [c for c in data if c in cdc.track_history_column_list]
    if cdc.track_history_except_column_list:
        return [c for c in data if c not in cdc.track_history_except_column_list]
    return data


def _rebuild(
    stored: list[dict], new: list[dict], sequence: str, columns: list[str], tracked: list[str]
) -> tuple[list[dict], int]:
    """One key's versions from its stored versions (as events) and new events, in sequence order."""
    events: dict = {}
    for row in stored:
        events[row[START_AT]] = {**{c: row[c] for c in columns}, IS_DELETE: False}
        if row[END_AT] is not None and row[END_AT] not in events:
            events[row[END_AT]] = {**{c: row[c] for c in columns}, sequence: row[END_AT], IS_DELETE: True}
    for event in new:
        events[event[sequence]] = event
    versions: list[dict] = []
    current: dict | None = None
    closes = 0
    for moment in sorted(events):
        event = events[moment]
        if event[IS_DELETE]:
            if current is not None:
                current[END_AT] = moment
                current, closes = None, closes + 1
            continue
        values = {c: event[c] for c in columns}
        if current is not None and all(current[c] == values[c] for c in tracked):
            current.update({c: values[c] for c in columns if c not in tracked and c != sequence})
            continue
        if current is not None:
            current[END_AT] = moment
        current = {**values, START_AT: moment, END_AT: None}
        versions.append(current)
    return versions, closes


def _scd2_schema(events: pa.Table, stored: pa.Schema | None, sequence: str) -> pa.Schema:
    """The stored schema, or the change feed's columns plus `__START_AT` / `__END_AT` of the sequence's type."""
    if stored is not None:
        return stored
    base = events.drop_columns([IS_DELETE]).schema
    sequence_type = base.field(sequence).type
    return pa.schema([*base, pa.field(START_AT, sequence_type), pa.field(END_AT, sequence_type)])
