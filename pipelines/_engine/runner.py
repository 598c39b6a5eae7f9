"""One pipeline update on the embedded engine: every selected dataset in dependency order.

Streaming tables and AUTO CDC targets read only what is new since their checkpoint
(landing files not yet in bronze; Delta versions after the one stored in the target's
own commit). Materialized views recompute when an input's data or their definition changed:
by key when they declare how their rows follow their inputs' keys and the update knows the keys
it changed, else whole. After a successful update gold is published for serving; a failed one
publishes nothing.
"""

import fcntl
import hashlib
import os
import time
import uuid
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import orjson
import pyarrow as pa

from conf.settings import DataPaths
from pipelines._engine.cdc import IS_DELETE, apply_changes, quote
from pipelines._engine.compiled import CompiledBodies
from pipelines._engine.errors import PipelineBusy, PipelineError, UpdateFailed
from pipelines._engine.events import MAINTENANCE_COMPLETE_RECOMPUTE, MAINTENANCE_ROW_BASED, EventLog
from pipelines._engine.lakehouse import (
    UPDATE_METADATA,
    Lakehouse,
    WrittenFiles,
    bind_arrow,
    column_types,
    register_delta,
)
from pipelines._engine.landing_reader import landing_files, register_landing
from pipelines._engine.publish import is_complete, publish_snapshot, read_pointer, served_files
from pipelines._engine.quality import QualityReport, check, warns_only
from pipelines._engine.sql import LANDING_SCHEMA
from pipelines.declaration import Dataset
from pipelines.gold import served_tables
from pipelines.graph import Graph, load_graph

QUARANTINE = "mls2_system.quarantine"
SOURCES_METADATA = "mls2.sources"
ROWS_DIGEST_METADATA = "mls2.rows_digest"
WRITTEN = "written_rows"
"""The relation of the files a streaming table's flow wrote, while its expectations are counted."""
DEFINITION_METADATA = "mls2.definition"
COMPILED_BODIES = "compiled_bodies.json"
"""The bodies' DuckDB SQL kept between updates, under MLS2_DATA_DIR/state."""

ProgressCallback = Callable[[str, str], None]
"""Called with (dataset, state) as each flow starts and ends."""


@dataclass
class FlowResult:
    dataset: str
    status: str
    input_records: int = 0
    output_records: int = 0
    dropped_records: int = 0
    deleted_records: int = 0
    version: int | None = None


@dataclass(frozen=True)
class KeyedRows:
    """Some keys of a dataset and all its rows for them, as they stand after this update's flows."""

    keys: str
    """A temporary relation of one column, `key`."""
    rows: str
    column: str
    """The column of `rows` holding the key."""


@dataclass
class UpdateResult:
    update_id: str
    state: str = "RUNNING"
    flows: list[FlowResult] = field(default_factory=list)
    published: dict | None = None
    error: str | None = None


DEFAULT_MEMORY_LIMIT = "2GB"


def relation(name: str) -> str:
    return name.replace(".", "__")


def stream_relation(name: str) -> str:
    return f"stream__{relation(name)}"


class UpdateLock:
    """An exclusive, non-blocking lock on the pipeline; released when the process ends, even by kill -9."""

    def __init__(self, paths: DataPaths, update_id: str) -> None:
        self.path = paths.state / "pipeline.lock"
        self.update_id = update_id

    def __enter__(self) -> "UpdateLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = open(self.path, "a+")
        try:
            fcntl.flock(self._handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._handle.seek(0)
            holder = self._handle.read().strip() or "unknown"
            self._handle.close()
            raise PipelineBusy(
                f"another pipeline update is running ({holder}); wait for it to finish, then run again"
            ) from None
        self._handle.seek(0)
        self._handle.truncate()
        self._handle.write(f"update {self.update_id} pid {os.getpid()} since {datetime.now(UTC).isoformat()}")
        self._handle.flush()
        return self

    def __exit__(self, *_: object) -> None:
        self._handle.seek(0)
        self._handle.truncate()
        fcntl.flock(self._handle, fcntl.LOCK_UN)
        self._handle.close()


class Update:
    def __init__(
        self,
        paths: DataPaths,
        graph: Graph,
        *,
        full_refresh: bool,
        refresh: list[str] | None,
        full_refresh_selection: list[str] | None,
        progress: ProgressCallback | None,
        memory_limit: str = DEFAULT_MEMORY_LIMIT,
    ) -> None:
        self.paths = paths
        self.graph = graph
        self.lakehouse = Lakehouse(paths.lakehouse, cache_tables=True)
        self.update_id = str(uuid.uuid4())
        self.events = EventLog(self.lakehouse, self.update_id)
        self.bodies = CompiledBodies(paths.state / COMPILED_BODIES)
        self.progress = progress or (lambda dataset, state: None)
        chosen_full = set(graph.check_names(full_refresh_selection or []))
        chosen = set(graph.check_names(refresh or []))
        everything = set(graph.datasets)
        self.full_refresh = everything if full_refresh else chosen_full
        self.selected = everything if not (chosen or chosen_full) else chosen | chosen_full
        spill = paths.root / "tmp" / "engine"
        spill.mkdir(parents=True, exist_ok=True)
        # Row order is left to DuckDB (tables have none; what needs an order says ORDER BY): keeping the
        # order of wide batches under the memory limit halved the speed of parsing property changes.
        self.con = duckdb.connect(
            config={"memory_limit": memory_limit, "temp_directory": str(spill), "preserve_insertion_order": False}
        )
        self.con.execute("SET TimeZone = 'UTC'")
        self.staged: dict[str, tuple[str, str, dict, FlowResult]] = {}
        """Materialized views computed this update (DuckDB temp tables, which spill to disk under the
        memory limit, or views over the table and the keys recomputed), with their kind (TABLE or
        VIEW), written together at its end: a failed update writes none."""
        self.unchanged: dict[str, tuple[dict, FlowResult]] = {}
        """Materialized views recomputed this update that hold the same rows: at its end they get a
        commit recording their inputs, and no data."""
        self.stream_reads: dict[str, tuple] = {}
        """What the last registration of each stream covered: a table's (checkpoint, version read up to),
        the landing files read."""
        self.before: dict[str, str] = {}
        """Each dataset's fingerprint before this update wrote it."""
        self.keyed_rows: dict[str, KeyedRows] = {}
        """Rows this update changed (or recomputed) by key, for materialized views refreshed by key."""
        self.shared_streams: dict[str, tuple[tuple, str]] = {}
        """Temporary views read as a stream by several datasets: what they covered, and the temp table
        holding their rows, computed once for every reader that reads the same range."""

    def run(self) -> UpdateResult:
        result = UpdateResult(update_id=self.update_id)
        self.events.emit(
            "create_update",
            f"Update {self.update_id[:8]} started.",
            {
                "create_update": {
                    "cause": "USER_ACTION",
                    "full_refresh": sorted(self.full_refresh),
                    "refresh_selection": sorted(self.selected),
                }
            },
        )
        self.events.update_progress("RUNNING")
        current = stage = None
        try:
            for dataset in self.graph.ordered():
                current = dataset.name
                if dataset.kind == "temporary_view":
                    continue
                if dataset.name not in self.selected:
                    continue
                self.progress(dataset.name, "RUNNING")
                self.events.flow_progress(dataset.name, "RUNNING")
                flow = self.run_flow(dataset)
                result.flows.append(flow)
                self.progress(dataset.name, flow.status)
            current = None
            stage = "committing the staged tables"
            self.commit_staged()
            stage = "publishing the serving snapshot"
            result.published = self.publish_if_gold_changed()
            stage = None
            result.state = "COMPLETED"
            self.events.update_progress("COMPLETED")
        except Exception as error:
            result.state = "FAILED"
            where = current or stage
            result.error = f"{where}: {error}" if where else str(error)
            if current:
                self.events.flow_progress(current, "FAILED", error=str(error))
            self.events.update_progress("FAILED", error=result.error)
            raise UpdateFailed(f"update {self.update_id} failed in {result.error}") from error
        finally:
            self.events.flush()
            self.con.close()
            with suppress(OSError):
                # Only a cache: an update that cannot keep it renders its bodies again next time.
                self.bodies.save([dataset.sql for dataset in self.graph.datasets.values()])
        return result

    def run_flow(self, dataset: Dataset) -> FlowResult:
        streams = dataset.streams
        reads = [name for name in dataset.depends_on if name not in streams]
        full = dataset.name in self.full_refresh
        if dataset.kind == "materialized_view" and not full and not self.is_stale(dataset):
            self.events.flow_progress(dataset.name, "SKIPPED")
            return FlowResult(dataset=dataset.name, status="SKIPPED")
        self.before.setdefault(dataset.name, self.lakehouse.fingerprint(dataset.name))
        if dataset.kind == "materialized_view":
            plan = "a full refresh" if full else self.incremental_plan(dataset)
            if isinstance(plan, dict):
                plan = self.refresh_by_key(dataset, plan)
                if isinstance(plan, FlowResult):
                    return plan
            self.events.planning_information(dataset.name, MAINTENANCE_COMPLETE_RECOMPUTE, plan)
        checkpoints: dict[str, int] = {}
        for name in reads:
            self.register_full_read(name)
        new_input = [self.register_stream(dataset, name, full, checkpoints) for name in streams]
        exists = self.lakehouse.table(dataset.name) is not None
        if streams and not any(new_input) and not full and exists:
            self.release_shared_streams(dataset)
            self.events.flow_progress(dataset.name, "SKIPPED", metrics={"num_output_rows": 0})
            return FlowResult(dataset=dataset.name, status="SKIPPED")

        batch = f"batch__{relation(dataset.name)}"
        body = self.bodies.render(
            dataset.sql, dataset.name, lambda name, streaming: stream_relation(name) if streaming else relation(name)
        )
        # A streaming table whose rules only warn is written as computed and counted over its files; a
        # body passing on rows already computed for several readers is not copied again.
        counted_once_written = dataset.kind == "streaming_table" and warns_only(dataset)
        kind = (
            "VIEW"
            if counted_once_written or self.bodies.passthrough(dataset.sql, dataset.name) in self.shared_streams
            else "TABLE"
        )
        self.con.execute(f"CREATE OR REPLACE TEMP {kind} {batch} AS {body}")
        if counted_once_written:
            return self.write_stream(dataset, batch, full, checkpoints, streams)
        checked = check(self.con, dataset, batch)
        self.quarantine(dataset, checked.quarantine)
        metadata = {UPDATE_METADATA: self.update_id}
        flow = FlowResult(
            dataset=dataset.name,
            status="COMPLETED",
            input_records=checked.report.input_records,
            dropped_records=checked.report.dropped_records,
        )
        if dataset.kind == "materialized_view":
            metadata[DEFINITION_METADATA] = self.definition_digest(dataset)

        if dataset.kind == "auto_cdc":
            metrics = apply_changes(
                self.con,
                self.lakehouse,
                dataset,
                checked.kept,
                full_refresh=full,
                metadata=metadata,
                checkpoints=checkpoints,
            )
            flow.output_records, flow.deleted_records = metrics.upserted, metrics.deleted
            self.keep_changed_rows(dataset, metrics.changed)
        elif dataset.kind == "materialized_view":
            staged = f"staged__{relation(dataset.name)}"
            self.release("TABLE", staged)
            if kind == "TABLE" and not checked.report.dropped_records:
                # The computed batch is what will be written: no copy (it took 7.7 s of a full refresh).
                self.con.execute(f"ALTER TABLE {batch} RENAME TO {staged}")
            else:
                self.con.execute(f"CREATE TEMP TABLE {staged} AS SELECT * FROM {checked.kept}")
            flow.output_records = checked.report.input_records - checked.report.dropped_records
            if not full and self.holds_same_rows(dataset.name, staged, metadata):
                self.release("TABLE", staged)
                self.unchanged[dataset.name] = (metadata, flow)
            else:
                self.staged[dataset.name] = (staged, "TABLE", metadata, flow)
        else:
            flow.output_records = checked.report.input_records - checked.report.dropped_records
            written = self.lakehouse.write_files(self.con, dataset.name, checked.kept)
            self.commit_stream(dataset, written, full, metadata, checkpoints)
        self.release(kind, batch)
        self.release("VIEW", *{checked.kept} - {batch}, *(stream_relation(name) for name in streams))
        return self.complete_flow(dataset, flow, checked.report)

    def write_stream(
        self, dataset: Dataset, batch: str, full: bool, checkpoints: dict[str, int], streams: list[str]
    ) -> FlowResult:
        """Write a streaming table's new rows, then count its expectations (all warn) over the files
        written, before they are committed: the batch is computed once and never held."""
        written = self.lakehouse.write_files(self.con, dataset.name, batch)
        try:
            self.con.execute(f"CREATE OR REPLACE TEMP VIEW {WRITTEN} AS SELECT * FROM {written.relation()}")
            checked = check(self.con, dataset, WRITTEN)
        except BaseException:
            written.remove()
            raise
        self.commit_stream(dataset, written, full, {UPDATE_METADATA: self.update_id}, checkpoints)
        report = checked.report
        flow = FlowResult(
            dataset=dataset.name,
            status="COMPLETED",
            input_records=report.input_records,
            output_records=report.input_records,
        )
        self.release("VIEW", WRITTEN, checked.kept, batch, *(stream_relation(name) for name in streams))
        return self.complete_flow(dataset, flow, report)

    def commit_stream(
        self, dataset: Dataset, written: WrittenFiles, full: bool, metadata: dict, checkpoints: dict[str, int]
    ) -> None:
        """Append a streaming table's new rows (replace them all on a full refresh or a first run)."""
        mode = "overwrite" if full or self.lakehouse.table(dataset.name) is None else "append"
        self.lakehouse.commit_files(written, mode=mode, metadata=metadata, checkpoints=checkpoints)

    def complete_flow(self, dataset: Dataset, flow: FlowResult, report: QualityReport) -> FlowResult:
        self.release_shared_streams(dataset)
        if dataset.name not in self.staged and dataset.name not in self.unchanged:
            flow.version = self.lakehouse.version(dataset.name)
        self.events.flow_progress(
            dataset.name,
            "COMPLETED",
            metrics={"num_output_rows": flow.output_records, "num_deleted_rows": flow.deleted_records},
            data_quality=report.as_data_quality() if dataset.expectations else None,
        )
        return flow

    def commit_staged(self) -> None:
        """Write the materialized views computed in this update, only once every flow succeeded.

        Views are committed in graph order, so each records the fingerprint of inputs already committed.
        """
        for name in [dataset.name for dataset in self.graph.ordered()]:
            if name not in self.staged and name not in self.unchanged:
                continue
            sources = orjson.dumps(self.fingerprints(self.graph[name])).decode()
            if name in self.staged:
                staged, kind, metadata, flow = self.staged.pop(name)
                metadata[SOURCES_METADATA] = sources
                flow.version = self.lakehouse.replace_with_relation(self.con, name, staged, metadata=metadata)
                self.release(kind, staged)
            else:
                metadata, flow = self.unchanged.pop(name)
                metadata[SOURCES_METADATA] = sources
                empty = self.lakehouse.table(name).schema().to_arrow().empty_table()
                flow.version = self.lakehouse.append(name, empty, metadata=metadata)

    def holds_same_rows(self, name: str, staged: str, metadata: dict) -> bool:
        """Whether the materialized view already holds exactly the rows just computed (same columns and
        types, same multiset of rows by count and row hashes): then it is not rewritten, and what reads
        it is not recomputed.

        The staged rows' digest goes into `metadata`, so the commit that writes them (or records them
        unchanged) carries it, and the next update compares with it instead of reading the table back.
        A table whose last commit carries none (a full refresh, a vacuum) is read back."""
        table = self.lakehouse.table(name)
        if table is None:
            return False
        metadata[ROWS_DIGEST_METADATA] = digest = self.rows_digest(staged)
        held = self.lakehouse.last_commit_metadata(name).get(ROWS_DIGEST_METADATA)
        if held is None:
            register_delta(self.con, "current_rows", table)
            held = self.rows_digest("current_rows")
            self.release("VIEW", "current_rows")
        return held == digest

    def rows_digest(self, rows: str) -> str:
        """A relation's columns and types, row count and two order-free sums of its row hashes."""
        columns = column_types(self.con, rows)
        [(count, total, xor)] = self.con.execute(
            f"SELECT count(*), sum(hash(r)::HUGEINT), bit_xor(hash(r)) FROM {rows} r"
        ).fetchall()
        return orjson.dumps([columns, count, str(total), str(xor)]).decode()

    def release(self, kind: str, *relations: str) -> None:
        """Drop temporary relations (of `kind`: TABLE or VIEW), so what a flow computed does not hold
        memory for the rest of the update."""
        for name in relations:
            self.con.execute(f"DROP {kind} IF EXISTS {name}")

    def register_full_read(self, name: str) -> None:
        dataset = self.graph[name]
        if dataset.kind == "temporary_view":
            for upstream in self.bodies.references(dataset.sql, name)[0]:
                self.register_full_read(upstream)
            body = self.bodies.render(dataset.sql, name, lambda ref, streaming: relation(ref))
            self.con.execute(f"CREATE OR REPLACE TEMP VIEW {relation(name)} AS {body}")
            return
        if name in self.staged:
            self.con.execute(f"DROP VIEW IF EXISTS {relation(name)}")
            self.con.execute(f"CREATE TEMP VIEW {relation(name)} AS SELECT * FROM {self.staged[name][0]}")
            return
        table = self.lakehouse.table(name)
        if table is None:
            raise PipelineError(f"{name} has not been computed yet; run an update that includes it")
        register_delta(self.con, relation(name), table)

    def register_stream(self, consumer: Dataset, name: str, full: bool, checkpoints: dict[str, int]) -> bool:
        """Prepare `stream__<name>` with what `consumer` has not read yet; True when there is any.

        A temporary view read as a stream passes the stream through: its own STREAM inputs are
        read incrementally for (and checkpointed by) the consumer.
        """
        if name.startswith(f"{LANDING_SCHEMA}."):
            return self.register_landing_stream(consumer, name, full)
        source = self.graph[name]
        if source.kind == "temporary_view":
            reads, streams = self.bodies.references(source.sql, name)
            for upstream in reads:
                self.register_full_read(upstream)
            fresh = [self.register_stream(consumer, upstream, full, checkpoints) for upstream in streams]
            body = self.bodies.render(
                source.sql, name, lambda ref, streaming: stream_relation(ref) if streaming else relation(ref)
            )
            self.register_view_stream(consumer, name, body, tuple(self.stream_reads.get(u) for u in streams))
            return any(fresh) or not streams
        version, has_rows = self.register_table_stream(consumer, name, full)
        checkpoints[f"{consumer.name}<-{name}"] = version
        return has_rows

    def register_view_stream(self, consumer: Dataset, name: str, body: str, covers: tuple) -> None:
        """`stream__<name>` for a temporary view: its rows computed once when a later dataset of this
        update reads the same range of it (property changes are parsed once for the latest state and
        for the history), else a plain view."""
        self.stream_reads[name] = covers
        shared = self.shared_streams.get(name)
        if shared is not None and shared[0] == covers:
            source = shared[1]
        elif self.later_stream_readers(consumer, name):
            source = f"shared__{relation(name)}"
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE {source} AS {body}")
            self.shared_streams[name] = (covers, source)
        else:
            self.con.execute(f"CREATE OR REPLACE TEMP VIEW {stream_relation(name)} AS {body}")
            return
        self.con.execute(f"CREATE OR REPLACE TEMP VIEW {stream_relation(name)} AS SELECT * FROM {source}")

    def later_stream_readers(self, consumer: Dataset, name: str) -> list[str]:
        """Datasets of this update after `consumer` that read `name` as a stream."""
        order = [dataset.name for dataset in self.graph.ordered()]
        after = order[order.index(consumer.name) + 1 :]
        return [later for later in after if later in self.selected and name in self.graph[later].streams]

    def release_shared_streams(self, consumer: Dataset) -> None:
        """Drop the shared rows of temporary views no later dataset of this update reads."""
        for name in [name for name in self.shared_streams if not self.later_stream_readers(consumer, name)]:
            self.release("TABLE", self.shared_streams.pop(name)[1])

    def register_landing_stream(self, dataset: Dataset, name: str, full: bool) -> bool:
        """Landing files not yet in `dataset` (all of them on a full refresh). True when there are any."""
        files = landing_files(self.paths.landing, dataset.landing.entity)
        if not full and (target := self.lakehouse.table(dataset.name)) is not None:
            register_delta(self.con, "processed_target", target)
            done = {row[0] for row in self.con.sql("SELECT DISTINCT source_file FROM processed_target").fetchall()}
            files = [path for path in files if path not in done]
        register_landing(self.con, stream_relation(name), self.paths.landing, files)
        self.stream_reads[name] = tuple(files)
        return bool(files)

    def register_table_stream(self, dataset: Dataset, name: str, full: bool) -> tuple[int, bool]:
        """Rows appended to `name` since `dataset`'s checkpoint; returns (version read up to, any rows)."""
        source = self.lakehouse.table(name)
        if source is None:
            raise PipelineError(f"{name} has not been computed yet; run an update that includes it")
        current = source.version()
        target = None if full else self.lakehouse.table(dataset.name)
        done = target.transaction_version(f"{dataset.name}<-{name}") if target is not None else None
        self.stream_reads[name] = (done, current)
        if done is None:
            register_delta(self.con, stream_relation(name), source)
            return current, True
        if done >= current:
            bind_arrow(self.con, stream_relation(name), source.schema().to_arrow().empty_table())
            return current, False
        changes = pa.table(source.load_cdf(starting_version=done + 1, ending_version=current))
        kinds = set(changes.column("_change_type").to_pylist())
        if kinds - {"insert"}:
            raise PipelineError(
                f"{name} changed other than by appends since {dataset.name} last read it; "
                f"run with --full-refresh-selection {dataset.name}"
            )
        bind_arrow(
            self.con,
            stream_relation(name),
            changes.drop_columns(["_change_type", "_commit_version", "_commit_timestamp"]),
        )
        return current, changes.num_rows > 0

    def fingerprints(self, dataset: Dataset) -> dict[str, str]:
        """What each input's data is now: a digest of its Delta files (temporary views: of their inputs)."""
        prints = {}
        for name in dataset.depends_on:
            upstream = self.graph[name]
            if upstream.kind == "temporary_view":
                prints[name] = hashlib.sha256(
                    orjson.dumps(self.fingerprints(upstream), option=orjson.OPT_SORT_KEYS)
                ).hexdigest()
                continue
            prints[name] = self.lakehouse.fingerprint(name)
        return prints

    def is_stale(self, dataset: Dataset) -> bool:
        """Whether an input changed, or the view's definition, since the view was last computed."""
        if any(name in self.staged for name in dataset.depends_on):
            return True
        last = self.lakehouse.last_commit_metadata(dataset.name)
        if not self.computed_as_defined(dataset, last):
            return True
        return orjson.loads(last[SOURCES_METADATA]) != self.fingerprints(dataset)

    def computed_as_defined(self, dataset: Dataset, last: dict) -> bool:
        """Whether a view's last commit (`last`) recorded its inputs, under its current definition."""
        return SOURCES_METADATA in last and last.get(DEFINITION_METADATA) == self.definition_digest(dataset)

    def definition_digest(self, dataset: Dataset) -> str:
        """What a view computes: its SQL, expectations and refresh declaration, and the SQL of the
        temporary views it reads (a view computed under another definition is recomputed, and whole)."""
        read = [self.graph[name] for name in dataset.depends_on if self.graph[name].kind == "temporary_view"]
        rules = [(e.name, e.constraint, e.on_violation) for e in dataset.expectations]
        parts = [dataset.sql, rules, dataset.incremental, [self.definition_digest(v) for v in read]]
        return hashlib.sha256(orjson.dumps(parts)).hexdigest()

    def incremental_plan(self, dataset: Dataset) -> dict[str, KeyedRows] | str:
        """The inputs a stale view can be refreshed from by key, with the keys they changed; or why it
        is computed whole. By key only when the view was current before this update, and each input
        that changed since is one its rows follow by key, with the keys this update changed in it."""
        declared = dataset.incremental
        if declared is None:
            return "its declaration does not say how its rows follow its inputs' keys"
        last = self.lakehouse.last_commit_metadata(dataset.name)
        if not self.computed_as_defined(dataset, last):
            return "it has not been computed under its current definition"
        recorded = orjson.loads(last[SOURCES_METADATA])
        changed = {}
        for name in dataset.depends_on:
            if self.graph[name].kind == "temporary_view":
                return f"it reads the temporary view {name}"
            before = self.before.get(name) or self.lakehouse.fingerprint(name)
            if recorded.get(name) != before:
                return f"it was not current with {name} before this update"
            if name not in self.staged and self.lakehouse.fingerprint(name) == before:
                continue
            if name not in declared.follows:
                return f"{name} changed, and each of its rows reads all of {name}"
            known = self.keyed_rows.get(name)
            if known is None or declared.key_of(name) not in (None, known.column):
                return f"{name} changed, and this update does not know by which keys"
            changed[name] = known
        return changed or "no input changed by key"

    def refresh_by_key(self, dataset: Dataset, changed: dict[str, KeyedRows]) -> FlowResult | str:
        """Recompute the view's rows for the keys its inputs changed, from those inputs' rows for the
        keys (and the whole of its other inputs), and stage the view as its other rows plus these.
        Expectations judge, and quarantine, the recomputed rows. When the declaration does not hold
        (a column missing or of another type, a NULL key, a row computed for a key not asked for),
        nothing is kept and the reason is returned: the caller computes the view whole."""
        name, own = dataset.name, relation(dataset.name)
        keys, batch, current = f"refresh_keys__{own}", f"batch__{own}", f"current__{own}"
        self.con.execute(
            f"CREATE OR REPLACE TEMP TABLE {keys} AS " + " UNION ".join(self.changed_keys(dataset, changed))
        )
        register_delta(self.con, current, self.lakehouse.table(name))
        partial: dict[str, str] = {}
        try:
            reason = self.compute_by_key(dataset, keys, batch, current, partial)
        finally:
            self.release("VIEW", *partial.values())
        if reason is not None:
            self.release("TABLE", batch, keys)
            self.release("VIEW", current)
            return reason
        return self.stage_by_key(dataset, keys, batch, current)

    def changed_keys(self, dataset: Dataset, changed: dict[str, KeyedRows]) -> list[str]:
        """Queries of the view's keys each changed input reaches: its own keys, or, for an input it
        follows through a keyed input, the keys of that input's rows whose column holds a changed key."""
        queries = []
        for name, known in changed.items():
            if dataset.incremental.key_of(name) is not None:
                queries.append(f"SELECT key FROM {known.keys}")
                continue
            via, column = dataset.incremental.through_of(name)
            self.register_full_read(via)
            via_key = quote(dataset.incremental.key_of(via))
            on = f"v.{quote(column)} = c.key"
            queries.append(f"SELECT v.{via_key} AS key FROM {relation(via)} v SEMI JOIN {known.keys} c ON {on}")
        return queries

    def compute_by_key(
        self, dataset: Dataset, keys: str, batch: str, current: str, partial: dict[str, str]
    ) -> str | None:
        """Compute into `batch` the view's rows for `keys` (registering in `partial` the views of its
        keyed inputs' rows for them); or say why the declaration does not hold for them."""
        declared = dataset.incremental
        key_type = dict(column_types(self.con, keys))["key"]
        if self.con.execute(f"SELECT count(*) FILTER (key IS NULL) FROM {keys}").fetchall()[0][0]:
            return "a key it changed is NULL"
        for source in dataset.depends_on:
            self.register_full_read(source)
            if (column := declared.key_of(source)) is not None:
                if dict(column_types(self.con, relation(source))).get(column) != key_type:
                    return f"{source} has no column {column} of the keys' type {key_type}"
                partial[source] = self.rows_for_keys(source, column, keys, relation(dataset.name))
        body = self.bodies.render(dataset.sql, dataset.name, lambda ref, streaming: partial.get(ref, relation(ref)))
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {batch} AS {body}")
        if column_types(self.con, batch) != column_types(self.con, current):
            return "the rows computed have other columns or types than the table"
        if dict(column_types(self.con, batch)).get(declared.column) != key_type:
            return f"it has no column {declared.column} of the keys' type {key_type}"
        [(strays,)] = self.con.execute(
            f"SELECT count(*) FROM {batch} b ANTI JOIN {keys} k ON b.{quote(declared.column)} = k.key"
        ).fetchall()
        if strays:
            return f"{strays} rows computed for its changed keys hold other values in {declared.column}"
        return None

    def stage_by_key(self, dataset: Dataset, keys: str, batch: str, current: str) -> FlowResult:
        """Check the rows recomputed for `keys`, and stage the view with them in place of its rows for
        the keys (or record it unchanged when they are the same rows)."""
        name, own, declared = dataset.name, relation(dataset.name), dataset.incremental
        column = quote(declared.column)
        checked = check(self.con, dataset, batch)
        self.quarantine(dataset, checked.quarantine)
        refreshed, replaced = f"refreshed__{own}", f"replaced__{own}"
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {refreshed} AS SELECT * FROM {checked.kept}")
        self.release("VIEW", *{checked.kept} - {batch})
        self.release("TABLE", batch)
        self.con.execute(
            f"CREATE OR REPLACE TEMP VIEW {replaced} AS "
            f"SELECT c.* FROM {current} c SEMI JOIN {keys} k ON c.{column} = k.key"
        )
        added, removed = self.rows_digest(refreshed), self.rows_digest(replaced)
        self.release("VIEW", replaced)
        self.keyed_rows[name] = KeyedRows(keys, refreshed, declared.column)
        metadata = {UPDATE_METADATA: self.update_id, DEFINITION_METADATA: self.definition_digest(dataset)}
        held = self.lakehouse.last_commit_metadata(name).get(ROWS_DIGEST_METADATA)
        flow = FlowResult(
            dataset=name,
            status="COMPLETED",
            input_records=checked.report.input_records,
            dropped_records=checked.report.dropped_records,
            output_records=checked.report.input_records - checked.report.dropped_records,
        )
        if added == removed:
            if held is not None:
                metadata[ROWS_DIGEST_METADATA] = held
            self.unchanged[name] = (metadata, flow)
            self.release("VIEW", current)
        else:
            staged = f"staged__{own}"
            self.con.execute(
                f"CREATE OR REPLACE TEMP VIEW {staged} AS SELECT c.* FROM {current} c ANTI JOIN {keys} k "
                f"ON c.{column} = k.key UNION ALL BY NAME SELECT * FROM {refreshed}"
            )
            digest = replaced_digest(held, removed, added)
            metadata[ROWS_DIGEST_METADATA] = digest if digest is not None else self.rows_digest(staged)
            self.staged[name] = (staged, "VIEW", metadata, flow)
        self.events.planning_information(name, MAINTENANCE_ROW_BASED)
        return self.complete_flow(dataset, flow, checked.report)

    def rows_for_keys(self, source: str, column: str, keys: str, reader: str) -> str:
        """A view of `source`'s rows whose `column` is one of `keys`: from the rows this update changed
        by that key where it knows them, else from the whole input (registered under its relation)."""
        view, whole = f"partial__{relation(source)}__for__{reader}", relation(source)
        known = self.keyed_rows.get(source)
        if known is None or known.column != column:
            parts = [f"SELECT w.* FROM {whole} w SEMI JOIN {keys} k ON w.{quote(column)} = k.key"]
        else:
            parts = [f"SELECT r.* FROM {known.rows} r SEMI JOIN {keys} k ON r.{quote(column)} = k.key"]
            unknown = f"(SELECT key FROM {keys} EXCEPT SELECT key FROM {known.keys})"
            if self.con.execute(f"SELECT count(*) FROM {unknown}").fetchall()[0][0]:
                parts.append(f"SELECT w.* FROM {whole} w SEMI JOIN {unknown} k ON w.{quote(column)} = k.key")
        self.con.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS " + " UNION ALL BY NAME ".join(parts))
        return view

    def keep_changed_rows(self, dataset: Dataset, applied: str | None) -> None:
        """Keep the rows an AUTO CDC flow applied by key, when a view of the graph follows its key."""
        if applied is None:
            return
        keys = dataset.cdc.keys
        followed = any(d.incremental and dataset.name in d.incremental.follows for d in self.graph.ordered())
        if len(keys) != 1 or not followed:
            self.release("TABLE", applied)
            return
        own = relation(dataset.name)
        changed_keys, rows = f"changed_keys__{own}", f"changed_rows__{own}"
        self.con.execute(
            f"CREATE OR REPLACE TEMP TABLE {changed_keys} AS SELECT DISTINCT {quote(keys[0])} AS key FROM {applied}"
        )
        self.con.execute(
            f"CREATE OR REPLACE TEMP VIEW {rows} AS SELECT * EXCLUDE ({IS_DELETE}) FROM {applied} WHERE NOT {IS_DELETE}"
        )
        self.keyed_rows[dataset.name] = KeyedRows(changed_keys, rows, keys[0])

    def quarantine(self, dataset: Dataset, rows: pa.Table | None) -> None:
        """Keep dropped rows with the rules they broke, the dataset and the update that dropped them."""
        if rows is None or rows.num_rows == 0:
            return
        count = rows.num_rows
        stamped = pa.table(
            {
                "dataset": pa.array([dataset.name] * count, pa.string()),
                "broken_rules": rows.column("broken_rules"),
                "record": rows.column("record"),
                "update_id": pa.array([self.update_id] * count, pa.string()),
                "quarantined_at": pa.array([datetime.now(UTC)] * count, pa.timestamp("us", tz="UTC")),
            }
        )
        self.lakehouse.append(QUARANTINE, stamped)

    def publish_if_gold_changed(self) -> dict | None:
        tables = served_tables()
        fingerprints = {
            name: self.lakehouse.fingerprint(name) for name in tables if self.lakehouse.table(name) is not None
        }
        pointer = read_pointer(self.paths.snapshot_pointer)
        files = served_files(self.paths.snapshots, pointer)
        if files and pointer["fingerprints"] == fingerprints and all(map(is_complete, files.values())):
            return None
        return publish_snapshot(
            self.lakehouse, self.paths.snapshot_pointer, tables, self.update_id, connection=self.con
        )


def replaced_digest(held: str | None, removed: str, added: str) -> str | None:
    """A table's rows digest (`Update.rows_digest`) after some rows were replaced by others, from the
    digests of the table and of both sets of rows; None when the table's is unknown or its columns differ."""
    if held is None:
        return None
    columns, count, total, xor = orjson.loads(held)
    _, removed_count, removed_total, removed_xor = orjson.loads(removed)
    added_columns, added_count, added_total, added_xor = orjson.loads(added)
    if columns != added_columns:
        return None

    def number(text: str) -> int:
        return 0 if text == "None" else int(text)

    rows = count - removed_count + added_count
    total = number(total) - number(removed_total) + number(added_total)
    xor = number(xor) ^ number(removed_xor) ^ number(added_xor)
    return orjson.dumps([columns, rows, str(total) if rows else "None", str(xor) if rows else "None"]).decode()


VACUUM_INTERVAL_SECONDS = 24 * 3600
"""How often updates are followed by a vacuum: a pass over every table takes about a second even
with nothing to remove."""


def vacuum_lakehouse(paths: DataPaths, retention_hours: int) -> dict[str, int]:
    """VACUUM every lakehouse table under the pipeline lock (no update may write meanwhile), and note
    when; returns the data files removed per table."""
    with UpdateLock(paths, f"vacuum-{uuid.uuid4()}"):
        removed = Lakehouse(paths.lakehouse).vacuum(retention_hours)
    _last_vacuum(paths).touch()
    return removed


def vacuum_due(paths: DataPaths) -> bool:
    """Whether VACUUM_INTERVAL_SECONDS have passed since the last vacuum (or there was none)."""
    marker = _last_vacuum(paths)
    return not marker.exists() or time.time() - marker.stat().st_mtime >= VACUUM_INTERVAL_SECONDS


def _last_vacuum(paths: DataPaths) -> Path:
    return paths.state / "last_vacuum"


def run_update(
    paths: DataPaths,
    *,
    graph: Graph | None = None,
    full_refresh: bool = False,
    refresh: list[str] | None = None,
    full_refresh_selection: list[str] | None = None,
    progress: ProgressCallback | None = None,
    memory_limit: str = DEFAULT_MEMORY_LIMIT,
) -> UpdateResult:
    """Run one update under the pipeline lock; raises PipelineBusy or UpdateFailed.

    `memory_limit` caps DuckDB's memory; beyond it, work spills to MLS2_DATA_DIR/tmp/engine.
    """
    update = Update(
        paths,
        graph or load_graph(),
        full_refresh=full_refresh,
        refresh=refresh,
        full_refresh_selection=full_refresh_selection,
        memory_limit=memory_limit,
        progress=progress,
    )
    with UpdateLock(paths, update.update_id):
        return update.run()
