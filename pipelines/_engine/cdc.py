"""AUTO CDC on the embedded engine: change rows merged into a Delta target by key and sequence.

Within a batch the newest change per key wins; against the target a change applies
only when its sequence is newer than the stored row's, so a late, older event never
overwrites a newer one.
"""

from dataclasses import dataclass

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from pipelines._engine.lakehouse import Lakehouse, commit_properties
from pipelines._engine.sql import spark_to_duckdb_expression
from pipelines.declaration import Dataset

IS_DELETE = "__is_delete"


@dataclass
class CdcMetrics:
    upserted: int = 0
    deleted: int = 0


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def target_columns(con: duckdb.DuckDBPyConnection, dataset: Dataset, changes: str) -> list[str]:
    cdc = dataset.cdc
    columns = [row[0] for row in con.sql(f"DESCRIBE {changes}").fetchall()]
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


def latest_changes(con: duckdb.DuckDBPyConnection, dataset: Dataset, changes: str) -> pa.Table:
    """One row per key, the newest by sequence, with its target columns and a delete flag."""
    cdc = dataset.cdc
    columns = target_columns(con, dataset, changes)
    delete_when = spark_to_duckdb_expression(cdc.apply_as_deletes) if cdc.apply_as_deletes else "false"
    keys = ", ".join(quote(k) for k in cdc.keys)
    selected = ", ".join(quote(c) for c in columns)
    return con.sql(
        f"SELECT {selected}, coalesce(({delete_when}), false) AS {IS_DELETE} FROM {changes} "
        f"QUALIFY row_number() OVER (PARTITION BY {keys} ORDER BY {quote(cdc.sequence_by)} DESC) = 1"
    ).to_arrow_table()


def apply_changes(
    con: duckdb.DuckDBPyConnection,
    lakehouse: Lakehouse,
    dataset: Dataset,
    changes: str,
    *,
    full_refresh: bool,
    metadata: dict,
    checkpoints: dict[str, int],
) -> CdcMetrics:
    """SCD type 1: upsert the newest change per key, delete keys whose newest change is a delete."""
    batch = latest_changes(con, dataset, changes)
    deletes = batch.column(IS_DELETE)
    upserts = batch.filter(pc.invert(deletes)).drop_columns([IS_DELETE])
    metrics = CdcMetrics(upserted=upserts.num_rows, deleted=batch.num_rows - upserts.num_rows)
    target = None if full_refresh else lakehouse.table(dataset.name)
    if target is None:
        lakehouse.overwrite(dataset.name, upserts, metadata=metadata, checkpoints=checkpoints)
        return metrics

    cdc = dataset.cdc
    columns = [name for name in batch.column_names if name != IS_DELETE]
    assignments = {quote(c): f"s.{quote(c)}" for c in columns}
    on_keys = " AND ".join(f"t.{quote(k)} = s.{quote(k)}" for k in cdc.keys)
    newer = f"s.{quote(cdc.sequence_by)} > t.{quote(cdc.sequence_by)}"
    result = (
        target.merge(
            batch,
            predicate=on_keys,
            source_alias="s",
            target_alias="t",
            merge_schema=True,
            commit_properties=commit_properties(metadata, checkpoints),
        )
        .when_matched_delete(predicate=f"s.{IS_DELETE} AND {newer}")
        .when_matched_update(updates=assignments, predicate=f"NOT s.{IS_DELETE} AND {newer}")
        .when_not_matched_insert(updates=assignments, predicate=f"NOT s.{IS_DELETE}")
        .execute()
    )
    return CdcMetrics(
        upserted=result["num_target_rows_inserted"] + result["num_target_rows_updated"],
        deleted=result["num_target_rows_deleted"],
    )
