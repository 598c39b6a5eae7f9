"""Integrity by key: a run after an update checks, of each dataset that declares its keys (`by_key`
in a suite file), only the rows whose keys the tables' commits since the run before it added,
replaced or deleted, read from their Delta logs (a table created since: all its rows). Every row
of the dataset a commit could have changed is among them; and a dataset the run before failed is
checked whole, so the rows left out are rows that passed: a run by key reaches a whole run's
verdicts. A dataset is checked whole when it declares no keys, when the run before failed it,
when a table it reads was created anew, changed its schema or its log since then is gone, or
when a table it reads whole changed (or lost values); the run is whole when there is no run
before it on this lakehouse, when the suites or this product's version changed since, or when
the last whole run is older than MLS2_INTEGRITY_WHOLE_EVERY_HOURS.
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib.metadata import PackageNotFoundError, version

import duckdb
import pyarrow as pa
from deltalake import DeltaTable

from expectations.suite_files import KeyedBy, Suite, SuiteDataset
from pipelines.embedded import duckdb_query, register_changes_since, table_view

RUNS_TABLE = "mls2_system.integrity_runs"
RUN_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()), ("run_at", pa.timestamp("us", "UTC")), ("engine", pa.string()),
        ("scope", pa.string()), ("base_run_id", pa.string()), ("suites", pa.string()), ("tables", pa.string()),
        ("whole_datasets", pa.string()), ("why_whole", pa.string()),
    ]
)  # fmt: skip
"""One row per run: what it checked (`whole` or `by key`, since `base_run_id`), a digest of the suites,
each table's id, version and schema as it read them (JSON), why a dataset of a run by key was
checked whole (JSON) and why a whole run was."""
ABSENT = "absent"
"""A table neither the run before nor this one found: nothing of it changed."""


def suites_digest(suites: tuple[Suite, ...]) -> str:
    """The suites as run (their SQL expanded from the mappings) and the versions of what runs them: a
    run by key compares with a run of the same, so a fix reaches the rows no update touches."""
    try:
        versions = [version("mls2"), version("great_expectations")]
    except PackageNotFoundError:
        versions = []
    return hashlib.sha256(repr((suites, versions)).encode()).hexdigest()


def table_state(table: DeltaTable) -> tuple[str, int, str]:
    """A table as a run reads it: its Delta id, version, and a digest of its schema and partitioning
    (a schema change alters rows without a file of them changing)."""
    metadata = table.metadata()
    shape = json.dumps([table.schema().to_json(), metadata.partition_columns])
    return metadata.id, table.version(), hashlib.sha256(shape.encode()).hexdigest()


@dataclass(frozen=True)
class PreviousRun:
    run_id: str
    suites: str
    tables: dict[str, tuple[str, int, str]]
    """Each table the run read: `table_state`."""
    last_whole_at: datetime | None
    failed: frozenset[str]
    """The datasets (`suite.dataset`) with an expectation it failed or could not run."""


def previous_run(con: duckdb.DuckDBPyConnection, engine: str) -> PreviousRun | None:
    """The latest run of `engine` on this lakehouse (RUNS_TABLE registered as a view), or None."""
    [(registered,)] = con.execute(
        "SELECT count(*) FROM duckdb_views() WHERE schema_name = 'mls2_system' "
        "AND view_name IN ('integrity_runs', 'integrity_results')"
    ).fetchall()
    if registered < 2:
        return None
    latest = con.execute(
        f"SELECT run_id, suites, tables, (SELECT max(run_at) FROM {RUNS_TABLE} WHERE engine = $1 AND scope = 'whole') "
        f"FROM {RUNS_TABLE} WHERE engine = $1 ORDER BY run_at DESC LIMIT 1",
        [engine],
    ).fetchall()
    if not latest:
        return None
    [(run_id, digest, tables, last_whole_at)] = latest
    failed = con.execute(
        "SELECT DISTINCT suite || '.' || dataset FROM mls2_system.integrity_results WHERE run_id = $1 AND NOT success",
        [run_id],
    ).fetchall()
    states = {name: tuple(state) for name, state in json.loads(tables).items() if len(state) == 3}
    return PreviousRun(run_id, digest, states, last_whole_at, frozenset(name for (name,) in failed))


def why_whole(previous: PreviousRun | None, digest: str, whole_every_hours: float, now: datetime) -> str | None:
    """Why this run must check every dataset whole, or None when it may go by key."""
    if previous is None:
        return "no earlier run on this lakehouse"
    if previous.suites != digest:
        return f"the suites or this product's version changed since run {previous.run_id}"
    if previous.last_whole_at is None or now - previous.last_whole_at >= timedelta(hours=whole_every_hours):
        return f"no whole run in the last {whole_every_hours:g} hours"
    return None


@dataclass(frozen=True)
class Restriction:
    """A dataset's query limited to the changed keys."""

    relations: dict[str, str]
    """Tables read restricted to the keys: `schema.table` -> the view of those rows."""
    where: str
    """DuckDB condition over the dataset's rows: a key column among the changed keys, or null."""
    keys: int
    """How many changed keys the rows are restricted to."""

    def query(self, spark_sql: str, *, origin: str) -> str:
        return f"SELECT * FROM ({duckdb_query(spark_sql, origin=origin, relations=self.relations)}) WHERE {self.where}"


class KeyScope:
    """The changes of a run by key: what each table's commits since `since` changed, registered on the
    connection the datasets are computed on, once per table."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        tables: dict[str, DeltaTable],
        states: dict[str, tuple[str, int, str]],
        since: PreviousRun,
    ) -> None:
        self.con = con
        self.tables = tables
        self.states = states
        """`table_state` of each of `tables`."""
        self.since = since
        self._changes: dict[str, str | None] = {}
        self._unknown: dict[str, str] = {}
        """Why a table's changes cannot be known."""
        self._key_tables: dict[tuple[tuple[str, str], ...], str] = {}
        self._relations = 0

    def _name(self, kind: str) -> str:
        self._relations += 1
        return f"by_key_{kind}__{self._relations}"

    def changes(self, table: str) -> str | None:
        """A relation of the rows `table`'s commits since the previous run added, replaced or deleted
        (a replaced or deleted row as it was; every row of a table created since), `ABSENT` for a
        table that is not there now nor was then, or None when they cannot be known."""
        if table not in self._changes:
            self._changes[table] = self._register(table)
        return self._changes[table]

    def _register(self, table: str) -> str | None:
        current, before = self.tables.get(table), self.since.tables.get(table)
        since = f"since run {self.since.run_id}"
        if current is None:
            if before is None:
                return ABSENT
            self._unknown[table] = f"{table} is gone {since}"
            return None
        if before is None:
            return table_view(table)
        table_id, _, shape = self.states[table]
        if before[0] != table_id:
            self._unknown[table] = f"{table} was created anew {since}"  # the keys of its old rows are gone
            return None
        if before[2] != shape:
            self._unknown[table] = f"{table} changed its schema {since}"
            return None
        name = self._name("changes")
        if not register_changes_since(self.con, name, current, before[1]):
            self._unknown[table] = f"{table}'s changes {since} are not all in its log"
            return None
        return name

    def restriction(self, suite: str, dataset: SuiteDataset) -> Restriction | str:
        """How to check `dataset` by key, or why it is checked whole. A dataset the run before failed is
        checked whole until it passes: the rows a run by key leaves out are then rows that passed."""
        whole = self._why_whole(suite, dataset)
        if whole is not None:
            return whole
        keys = {keyed.column: self._keys(dataset.name, keyed) for keyed in dataset.by_key}
        relations = self._reads(dataset, keys) if dataset.reads_by_key else {}
        where = " OR ".join(
            f'"{column}" IN (SELECT key FROM {name}) OR "{column}" IS NULL' for column, name in keys.items()
        )
        [(count,)] = self.con.execute(
            f"SELECT count(*) FROM ({' UNION '.join(f'SELECT key FROM {name}' for name in keys.values())})"
        ).fetchall()
        return Restriction(relations, where, count)

    def _why_whole(self, suite: str, dataset: SuiteDataset) -> str | None:
        if not dataset.by_key:
            return "it declares no keys"
        if f"{suite}.{dataset.name}" in self.since.failed:
            return f"it failed in run {self.since.run_id}"
        read = {t for keyed in dataset.by_key for t, _ in keyed.changes} | set(dataset.whole_if_changed)
        for table in sorted(read | {table for table, _ in dataset.whole_if_removed}):
            if self.changes(table) is None:
                return self._unknown[table]
        for table in dataset.whole_if_changed:
            if self.changes(table) == ABSENT:
                continue
            [(changed,)] = self.con.execute(f"SELECT count(*) FROM {self.changes(table)}").fetchall()
            if changed:
                return f"{table}, which it reads whole, changed"
        for table, columns in dataset.whole_if_removed:
            if self.changes(table) == ABSENT:
                continue
            listed = ", ".join(f'"{column}"' for column in columns)
            [(removed,)] = self.con.execute(
                f"SELECT count(*) FROM (SELECT {listed} FROM {self.changes(table)} "
                f"EXCEPT SELECT {listed} FROM {table_view(table)})"
            ).fetchall()
            if removed:
                return f"{table}, which it reads whole, lost values of {', '.join(columns)}"
        return None

    def _keys(self, dataset: str, keyed: KeyedBy) -> str:
        """A temporary table of the keys `keyed`'s tables changed (computed once for every dataset
        declaring the same tables and expressions)."""
        if keyed.changes in self._key_tables:
            return self._key_tables[keyed.changes]
        name = self._name("keys")
        present = [(table, expr) for table, expr in keyed.changes if self.changes(table) != ABSENT]
        query = "SELECT NULL::VARCHAR AS key WHERE false"
        if present:
            selects = " UNION ALL ".join(f"SELECT {expr} AS key FROM {table}" for table, expr in present)
            query = duckdb_query(
                f"SELECT DISTINCT key FROM ({selects}) changed WHERE key IS NOT NULL",
                origin=f"dataset {dataset}, by_key {keyed.column}",
                relations={table: self.changes(table) for table, _ in present},
            )
        self.con.execute(f"CREATE TEMP TABLE {name} AS {query}")
        self._key_tables[keyed.changes] = name
        return name

    def _reads(self, dataset: SuiteDataset, keys: dict[str, str]) -> dict[str, str]:
        """Each table `reads_by_key` lists, as a view of its rows giving a changed key (or a null one)."""
        relations = {}
        for table, named in dataset.reads_by_key:
            if self.changes(table) == ABSENT:
                continue
            condition = " OR ".join(
                f"({expression}) IN (SELECT key FROM {keys[column]}) OR ({expression}) IS NULL"
                for column, expression in named
            )
            name = self._name("reads")
            origin = f"dataset {dataset.name}, {table} read by key"
            query = duckdb_query(f"SELECT * FROM {table} WHERE {condition}", origin=origin)
            self.con.execute(f"CREATE TEMP VIEW {name} AS {query}")
            relations[table] = name
        return relations
