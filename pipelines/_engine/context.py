"""The state one update shares between its flows: the DuckDB session, what it has read and staged,
and the relations through which a flow reads its inputs.

A flow reads each input under a DuckDB relation named after it: `relation(name)` for a whole read,
`stream_relation(name)` for what is new since the flow's checkpoint (`STREAM(name)`).
"""

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import duckdb
import numpy as np
import orjson
import pyarrow as pa
from deltalake.exceptions import DeltaError

from conf.settings import DataPaths
from pipelines._engine import arrow
from pipelines._engine.compiled import CompiledBodies
from pipelines._engine.errors import PipelineError
from pipelines._engine.events import EventLog
from pipelines._engine.lakehouse import (
    COMMITS_SEARCHED,
    Lakehouse,
    bind_arrow,
    column_types,
    last_data_change,
    register_delta,
)
from pipelines._engine.landing_listing import LandingListing
from pipelines._engine.landing_reader import register_landing
from pipelines._engine.quality import QualityReport
from pipelines.declaration import LANDING_SCHEMA, Dataset, Graph

QUARANTINE = "mls2_system.quarantine"
LANDING_METADATA = "mls2.landing_pages"
"""What a landing-fed table's commit records: a digest of the landing pages listed when it read them."""
COMPILED_BODIES = "compiled_bodies.json"
"""The bodies' and expressions' DuckDB SQL kept between updates, under MLS2_DATA_DIR/state."""
LANDING_LISTING = "landing_listing.json"
"""Where an update keeps the landing's pages by run folder (`LandingListing`), in the state folder."""

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


def keyed_column(dataset: Dataset) -> str | None:
    """The column an update keys the rows it changes in `dataset` by (`KeyedRows`): an AUTO CDC
    target's one key, or the column a view refreshed by key follows; None for any other."""
    if dataset.cdc is not None:
        return dataset.cdc.keys[0] if len(dataset.cdc.keys) == 1 else None
    return dataset.incremental.column if dataset.incremental else None


@dataclass(frozen=True)
class KeyedRows:
    """Some keys of a dataset and all its rows for them, as they stand after this update's flows."""

    keys: str
    """A temporary relation of one column, `key`."""
    rows: str
    column: str
    """The column of `rows` holding the key."""


def relation(name: str) -> str:
    return name.replace(".", "__")


def stream_relation(name: str) -> str:
    return f"stream__{relation(name)}"


class UpdateContext:
    """One update's session and bookkeeping, handed to each flow it runs."""

    def __init__(
        self,
        paths: DataPaths,
        graph: Graph,
        update_id: str,
        con: duckdb.DuckDBPyConnection,
        *,
        full_refresh: set[str],
        selected: set[str],
        key_index_cells: int | None = None,
    ) -> None:
        self.paths = paths
        self.graph = graph
        self.update_id = update_id
        self.con = con
        self.full_refresh = full_refresh
        self.selected = selected
        self.lakehouse = Lakehouse(paths.lakehouse, cache_tables=True, key_index_cells=key_index_cells)
        self.events = EventLog(self.lakehouse, update_id)
        self.bodies = CompiledBodies(paths.state / COMPILED_BODIES)
        self.staged: dict[str, tuple[str, str, dict, FlowResult]] = {}
        """Materialized views computed this update (DuckDB temp tables, which spill to disk under the
        memory limit, or views over the table and the keys recomputed), with their kind (TABLE or
        VIEW), written together at its end: a failed update writes none."""
        self.merges: dict[str, tuple[str, str]] = {}
        """Staged views refreshed by key that are written merge-on-read: the temporary table of the
        positions of the rows they replace, and that of the rows replacing them."""
        self.unchanged: dict[str, tuple[dict, FlowResult]] = {}
        """Materialized views recomputed this update that hold the same rows: at its end they get a
        commit recording their inputs, and no data."""
        self.stream_reads: dict[str, tuple] = {}
        """What the last registration of each stream covered: a table's (checkpoint, version read up to),
        the landing files read."""
        self.landing_pages: dict[str, list[str]] = {}
        """Each landing folder's pages, listed once an update."""
        self.landing_listing = LandingListing(paths.landing, paths.state / LANDING_LISTING)
        self.before: dict[str, str] = {}
        """Each dataset's fingerprint before this update wrote it."""
        self.keyed_rows: dict[str, KeyedRows] = {}
        """Rows this update changed (or recomputed) by key, for materialized views refreshed by key."""
        self.shared_streams: dict[str, tuple[tuple, str]] = {}
        """Temporary views read as a stream by several datasets: what they covered, and the temp table
        holding their rows, computed once for every reader that reads the same range."""

    def release(self, kind: str, *relations: str) -> None:
        """Drop temporary relations (of `kind`: TABLE or VIEW), so what a flow computed does not hold
        memory for the rest of the update."""
        for name in relations:
            self.con.execute(f"DROP {kind} IF EXISTS {name}")

    def quarantine(self, dataset: Dataset, rows: pa.Table | None) -> None:
        """Keep dropped rows with the rules they broke, the dataset and the update that dropped them."""
        if rows is None or rows.num_rows == 0:
            return
        count = rows.num_rows
        now = (datetime.now(UTC) - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
        stamped = pa.Table.from_arrays(
            [
                arrow.array([dataset.name] * count, pa.string()),
                rows.column("broken_rules"),
                rows.column("record"),
                arrow.array([self.update_id] * count, pa.string()),
                arrow.array(np.full(count, now, dtype=np.int64), pa.timestamp("us", tz="UTC")),
            ],
            names=["dataset", "broken_rules", "record", "update_id", "quarantined_at"],
        )
        self.lakehouse.append(QUARANTINE, stamped)

    def rows_digest(self, rows: str) -> str:
        """A relation's columns and types, row count and two order-free sums of its row hashes."""
        columns = column_types(self.con, rows)
        [(count, total, xor)] = self.con.execute(
            f"SELECT count(*), sum(hash(r)::HUGEINT), bit_xor(hash(r)) FROM {rows} r"
        ).fetchall()
        return orjson.dumps([columns, count, str(total), str(xor)]).decode()

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

    def complete_flow(self, dataset: Dataset, flow: FlowResult, report: QualityReport) -> FlowResult:
        self.release_shared_streams(dataset)
        if dataset.name not in self.staged and dataset.name not in self.unchanged:
            flow.version = self.lakehouse.version(dataset.name)
        self.events.flow_progress(
            dataset.name,
            "COMPLETED",
            metrics={"num_output_rows": flow.output_records, "num_deleted_rows": flow.deleted_records},
            data_quality=report.as_data_quality() if dataset.expectations or dataset.unique_key else None,
        )
        return flow

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

    def may_be_unread(self, consumer: Dataset, name: str) -> bool:
        """Whether the stream `name` may hold rows `consumer` has not read: False only when its tables'
        versions say so, before anything is registered. Landing is for the reader's plan to decide."""
        if name.startswith(f"{LANDING_SCHEMA}."):
            return True
        source = self.graph[name]
        if source.kind == "temporary_view":
            streams = self.bodies.references(source.sql, name)[1]
            return not streams or any(self.may_be_unread(consumer, upstream) for upstream in streams)
        table, target = self.lakehouse.table(name), self.lakehouse.table(consumer.name)
        if table is None or target is None:
            return True
        done = target.transaction_version(f"{consumer.name}<-{name}")
        return done is None or done < table.version()

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

    def listed_pages(self, dataset: Dataset) -> list[str]:
        """The pages of `dataset`'s landing folder, as listed the first time this update asked."""
        entity = dataset.landing.entity
        if entity not in self.landing_pages:
            relist = dataset.name in self.full_refresh
            self.landing_pages[entity] = self.landing_listing.pages(entity, relist=relist)
        return self.landing_pages[entity]

    def landing_digest(self, dataset: Dataset) -> str:
        """A digest of the pages listed in `dataset`'s landing folder (`LANDING_METADATA`)."""
        return hashlib.sha256("\n".join(self.listed_pages(dataset)).encode()).hexdigest()

    def nothing_landed(self, dataset: Dataset) -> bool:
        """Whether `dataset`'s landing folder lists the pages it listed when the table last read it:
        then the table holds them all, and nothing needs reading to know it. A page landed or retired
        since, or a write to the table other than the pipeline's (a restore, a delete), makes the
        update compare the pages with those the table holds."""
        table = self.lakehouse.table(dataset.name)
        last = last_data_change(table, look_back=COMMITS_SEARCHED) if table is not None else None
        return last is not None and last.get(LANDING_METADATA) == self.landing_digest(dataset)

    def register_landing_stream(self, dataset: Dataset, name: str, full: bool) -> bool:
        """Landing files not yet in `dataset` (all of them on a full refresh). True when there are any."""
        files = self.listed_pages(dataset)
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
        try:
            changes = arrow.read_stream(source.load_cdf(starting_version=done + 1, ending_version=current))
        except DeltaError as error:
            # A table written merge-on-read keeps no change data feed.
            raise PipelineError(
                f"{name} cannot be read as a stream since {dataset.name} last read it ({error}); "
                f"run with --full-refresh-selection {dataset.name}"
            ) from None
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
