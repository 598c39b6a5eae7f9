"""Where the suites' datasets are computed and their results kept: the embedded lakehouse (DuckDB
over the Delta tables, GX's pandas datasource) or Spark (the Unity Catalog tables the Lakeflow
pipeline publishes, GX's Spark datasource; a Databricks job's task).

Beside the pipeline's tables each engine gives the suites' SQL three relations of its own:
`mls2_quarantine` (every row a drop rule removed, whichever tables the engine keeps them in),
`mls2_syncs` (the successful syncs, from the sync state) and, on the embedded engine only,
`mls2_snapshot` (what the served snapshot was published from).
"""

import contextlib
import sqlite3
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

import duckdb
import pyarrow as pa
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import DeltaError

from conf.settings import Settings
from expectations.by_key import RUN_SCHEMA, RUNS_TABLE, Restriction, table_state
from expectations.suite_files import QUARANTINE_TABLE, QUARANTINE_VIEW
from ingestion.saved_state import SavedStateError, restore_state
from ingestion.state import SyncState
from pipelines.embedded import (
    Lakehouse,
    PipelineBusy,
    duckdb_query,
    last_data_change,
    pipeline_lock,
    register_delta,
)
from pipelines.snapshot.pointer import read_pointer
from pipelines.spark_sql import SqlError

RESULTS_TABLE = "mls2_system.integrity_results"
RESULT_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()), ("run_at", pa.timestamp("us", "UTC")), ("engine", pa.string()),
        ("suite", pa.string()), ("dataset", pa.string()), ("expectation", pa.string()), ("severity", pa.string()),
        ("success", pa.bool_()), ("observed_value", pa.string()), ("unexpected_count", pa.int64()),
        ("unexpected_sample", pa.list_(pa.string())), ("message", pa.string()), ("scope", pa.string()),
        ("changed_keys", pa.int64()),
    ]
)  # fmt: skip
QUARANTINE_SCHEMA = pa.schema(
    [("dataset", pa.string()), ("broken_rules", pa.list_(pa.string())), ("record", pa.string())]
)
SYNCS_SCHEMA = pa.schema([("sync_id", pa.string()), ("finished_at", pa.timestamp("us", "UTC"))])
RESULT_DDL = (
    "run_id string, run_at timestamp, engine string, suite string, dataset string, expectation string, "
    "severity string, success boolean, observed_value string, unexpected_count bigint, "
    "unexpected_sample array<string>, message string, scope string, changed_keys bigint"
)
QUARANTINE_DDL = "dataset string, broken_rules array<string>, record string"
SYNCS_DDL = "sync_id string, finished_at timestamp"


class EngineError(RuntimeError):
    """The engine cannot be read or written as a whole (its tables, the sync state, the results table)."""


class DatasetError(RuntimeError):
    """One dataset cannot be computed (a missing table or column): its expectations fail with this."""


class Engine(Protocol):
    """Entered for a run: the tables it reads are fixed on entry and released on exit."""

    name: str

    def __enter__(self) -> "Engine": ...

    def __exit__(self, *_: object) -> None: ...

    def frame(self, sql: str, *, origin: str, restriction: Restriction | None = None) -> Any:
        """The rows of a suite dataset's Spark SQL, as the engine's GX datasource takes them (only
        those a run by key checks, with `restriction`: the embedded engine's alone)."""

    def release(self, frame: Any) -> None:
        """Free what `frame` holds, once its expectations ran."""

    def add_datasource(self, context: Any, name: str) -> Any:
        """This engine's GX datasource, added to `context`."""

    def append_results(self, rows: list[dict]) -> None:
        """Append result rows (RESULT_SCHEMA) to mls2_system.integrity_results."""


def successful_syncs(settings: Settings) -> list[dict]:
    """The syncs that succeeded, from the sync state (restored from MLS2_SYNC_STATE_URL when this
    machine has none: a Databricks job cluster's disk is new each run)."""
    try:
        if settings.mls2_sync_state_url:
            restore_state(settings.mls2_sync_state_url, settings.sync_state_path)
    except SavedStateError as error:
        raise EngineError(str(error)) from None
    try:
        state = SyncState(settings.sync_state_path)
        try:
            finished = [s for s in state.recent_syncs(1000) if s.status == "succeeded" and s.finished_at]
        finally:
            state.close()
        return [{"sync_id": s.sync_id, "finished_at": datetime.fromisoformat(s.finished_at)} for s in finished]
    except (sqlite3.Error, ValueError, OSError) as error:
        raise EngineError(f"the sync state {settings.sync_state_path} cannot be read: {error}") from None


def _data_version(path: Path) -> int | None:
    """The table's latest version that changed its rows (a vacuum commits two versions that do not)."""
    if not (path / "_delta_log").exists():
        return None
    table = DeltaTable(str(path))
    commit = last_data_change(table)
    return table.version() if commit is None else int(commit["version"])


def _newer_version(published: int | None, changed: int | None) -> int | None:
    """The gold version the snapshot should be at: the latest that changed rows, or the published
    one when none did after it (a view that rewrote nothing commits a version of its own)."""
    if published is None or changed is None:
        return changed
    return max(published, changed)


class EmbeddedEngine:
    """DuckDB over the embedded lakehouse. Every table is pinned to its current version under the
    pipeline lock, so every dataset sees the tables as one update left them, never half of the next
    one; the lock is then released (an update may start while the datasets are computed: the pinned
    files stay until a vacuum past the retention period)."""

    name = "embedded"

    def __init__(self, settings: Settings, run_id: str) -> None:
        self.settings = settings
        self.run_id = run_id
        self._stack = contextlib.ExitStack()
        self.tables: dict[str, DeltaTable] = {}
        """Every table of the lakehouse as this run reads it."""

    def __enter__(self) -> "EmbeddedEngine":
        self.con = self._stack.enter_context(duckdb.connect())
        try:
            self.con.execute("SET TimeZone = 'UTC'")
            with pipeline_lock(self.settings.paths, f"integrity run {self.run_id}"):
                self._register_lakehouse()
                self._register_context()
        except PipelineBusy as error:
            self._stack.close()
            raise EngineError(f"the lakehouse cannot be read now: {error}") from None
        except (DeltaError, duckdb.Error, OSError, ValueError) as error:
            self._stack.close()
            raise EngineError(f"the lakehouse at {self.settings.paths.lakehouse} cannot be read: {error}") from None
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self._stack.close()

    def _register_lakehouse(self) -> None:
        """Every Delta table of the lakehouse as `schema.table`, read from its committed files."""
        for table_dir in sorted(self.settings.paths.lakehouse.glob("*/*/_delta_log")):
            schema, table = table_dir.parent.parent.name, table_dir.parent.name
            self.con.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            delta = self.tables[f"{schema}.{table}"] = DeltaTable(str(table_dir.parent))
            register_delta(self.con, f"{schema}__{table}", delta)
            self.con.execute(f'CREATE OR REPLACE VIEW "{schema}"."{table}" AS SELECT * FROM "{schema}__{table}"')

    def _register_context(self) -> None:
        settings = self.settings
        pointer = read_pointer(settings.paths.snapshot_pointer) or {}
        published_at = datetime.fromisoformat(pointer["published_at"]) if "published_at" in pointer else None
        rows = [
            {
                "table_name": name,
                "published_version": published,
                "gold_version": _newer_version(
                    published, _data_version(settings.paths.lakehouse.joinpath(*name.split(".", 1)))
                ),
                "published_at": published_at,
            }
            for name, published in sorted(pointer.get("versions", {}).items())
        ]
        snapshot = pa.schema(
            [("table_name", pa.string()), ("published_version", pa.int64()), ("gold_version", pa.int64()),
             ("published_at", pa.timestamp("us", "UTC"))]
        )  # fmt: skip
        self.con.register("mls2_snapshot", pa.Table.from_pylist(rows, snapshot))
        self.con.register("mls2_syncs", pa.Table.from_pylist(successful_syncs(settings), SYNCS_SCHEMA))
        quarantine = settings.paths.lakehouse.joinpath(*QUARANTINE_TABLE.split("."))
        if (quarantine / "_delta_log").exists():
            self.con.execute(
                f"CREATE VIEW {QUARANTINE_VIEW} AS SELECT dataset, broken_rules, record FROM {QUARANTINE_TABLE}"
            )
        else:
            self.con.register(QUARANTINE_VIEW, QUARANTINE_SCHEMA.empty_table())

    def frame(self, sql: str, *, origin: str, restriction: Restriction | None = None) -> Any:
        try:
            query = duckdb_query(sql, origin=origin) if restriction is None else restriction.query(sql, origin=origin)
            return self.con.sql(query).df()
        except (duckdb.Error, SqlError) as error:
            raise DatasetError(str(error).splitlines()[0]) from None

    def release(self, frame: Any) -> None:
        """A pandas frame is freed with its last reference."""

    def add_datasource(self, context: Any, name: str) -> Any:
        return context.data_sources.add_pandas(name)

    @cached_property
    def versions(self) -> dict[str, tuple[str, int, str]]:
        """Each table as this run reads it (`table_state`): what a run by key compares with the run
        before, and where the next one starts."""
        return {name: table_state(table) for name, table in sorted(self.tables.items())}

    def append_results(self, rows: list[dict]) -> None:
        self._append(RESULTS_TABLE, pa.Table.from_pylist(rows, RESULT_SCHEMA))

    def append_run(self, row: dict) -> None:
        """Append the run's own row (RUN_SCHEMA) to RUNS_TABLE, after its results."""
        self._append(RUNS_TABLE, pa.Table.from_pylist([row], RUN_SCHEMA))

    def _append(self, name: str, rows: pa.Table) -> None:
        path = self.settings.paths.lakehouse.joinpath(*name.split("."))
        try:
            write_deltalake(str(path), rows, mode="append", schema_mode="merge")
            # Appended after every update: checkpointed as the pipeline's tables are.
            Lakehouse(self.settings.paths.lakehouse).committed(name)
        except (DeltaError, OSError) as error:
            raise EngineError(f"the results could not be appended to {name}: {error}") from None


class SparkEngine:
    """A Spark session over the catalog the Lakeflow pipeline publishes to (`catalog`, or the
    session's current one): the suites' SQL runs as written."""

    name = "spark"

    def __init__(self, settings: Settings, spark: Any, catalog: str | None = None) -> None:
        self.settings = settings
        self.spark = spark
        self.catalog = catalog
        self._cached: list[Any] = []

    def __enter__(self) -> "SparkEngine":
        from pyspark.errors import PySparkException

        try:
            if self.catalog:
                known = {catalog.name for catalog in self.spark.catalog.listCatalogs()}
                if self.catalog not in known:
                    raise EngineError(f"Spark has no catalog {self.catalog} (it has {', '.join(sorted(known))})")
                self.spark.catalog.setCurrentCatalog(self.catalog)
            self._register_context()
        except PySparkException as error:
            raise EngineError(f"Spark cannot read the pipeline's tables: {first_line(error)}") from None
        return self

    def __exit__(self, *_: object) -> None:
        for frame in self._cached:
            frame.unpersist()
        self._cached.clear()

    def _register_context(self) -> None:
        self._frame(successful_syncs(self.settings), SYNCS_DDL).createOrReplaceTempView("mls2_syncs")
        schema, name = QUARANTINE_TABLE.split(".")
        tables = []
        if self.spark.catalog.databaseExists(schema):
            # Lakeflow keeps a streaming table's drops in mls2_system.quarantine and a materialized
            # view's in mls2_system.quarantine_<view> (pipelines.lakeflow.registration).
            tables = [t.name for t in self.spark.catalog.listTables(schema) if t.name.startswith(name)]
        selects = [f"SELECT dataset, broken_rules, record FROM {schema}.{table}" for table in sorted(tables)]
        if selects:
            self.spark.sql(" UNION ALL ".join(selects)).createOrReplaceTempView(QUARANTINE_VIEW)
        else:
            self._frame([], QUARANTINE_DDL).createOrReplaceTempView(QUARANTINE_VIEW)

    def frame(self, sql: str, *, origin: str, restriction: Restriction | None = None) -> Any:
        from pyspark.errors import PySparkException

        if restriction is not None:
            raise EngineError("runs by key are the embedded engine's: Spark checks every dataset whole")
        try:
            frame = self.spark.sql(sql).cache()
        except PySparkException as error:
            raise DatasetError(first_line(error)) from None
        self._cached.append(frame)
        return frame

    def release(self, frame: Any) -> None:
        frame.unpersist()
        self._cached.remove(frame)

    def _frame(self, rows: list[dict], ddl: str) -> Any:
        """Rows as a Spark DataFrame: from Python rows, which Spark 3.5 (Databricks Runtime 16) takes
        as well as Spark 4 (a pyarrow table it takes only from 4.0)."""
        return self.spark.createDataFrame(rows, ddl)

    def add_datasource(self, context: Any, name: str) -> Any:
        return context.data_sources.add_spark(name)

    def append_results(self, rows: list[dict]) -> None:
        from pyspark.errors import PySparkException

        try:
            self.spark.sql(f"CREATE SCHEMA IF NOT EXISTS {RESULTS_TABLE.split('.')[0]}")
            frame = self._frame(rows, RESULT_DDL)
            frame.write.mode("append").option("mergeSchema", "true").saveAsTable(RESULTS_TABLE)
        except PySparkException as error:
            raise EngineError(f"the results could not be appended to {RESULTS_TABLE}: {first_line(error)}") from None


def first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0]
