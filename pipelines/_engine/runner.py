"""One pipeline update on the embedded engine: every selected dataset's flow in dependency order.

The engine is handed the graph to run and the gold tables to publish; each dataset's kind has its
flow class (`flows`). Streaming tables and AUTO CDC targets read only what is new since their
checkpoint (landing files not yet in bronze; Delta versions after the one stored in the target's
own commit). Materialized views recompute when an input's data or their definition changed. After
a successful update gold is published for serving; a failed one publishes nothing.
"""

import threading
import uuid
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass, field

import duckdb

from conf.settings import DataPaths
from pipelines._engine.compiled import declared_texts
from pipelines._engine.context import FlowResult, ProgressCallback, UpdateContext
from pipelines._engine.errors import UpdateCanceled, UpdateFailed
from pipelines._engine.flows import FLOWS, commit_staged
from pipelines._engine.lock import UpdateLock
from pipelines._engine.maintenance import retired_landing
from pipelines._engine.publish import publish_snapshot
from pipelines._engine.storage import check_free_space
from pipelines.declaration import Graph
from pipelines.snapshot import is_complete, read_pointer, served_files

ServedTables = Mapping[str, tuple[str, ...]]
"""The gold tables to publish, each with the columns it is looked up by (the key first)."""


@dataclass
class UpdateResult:
    update_id: str
    state: str = "RUNNING"
    flows: list[FlowResult] = field(default_factory=list)
    published: dict | None = None
    error: str | None = None


DEFAULT_MEMORY_LIMIT = "2GB"
DEFAULT_RESERVE_BYTES = 2**30
"""Disk an update leaves free beyond what it estimates it writes (DuckDB's spill files, the rest of the disk)."""


class Update:
    """The scheduler of one update: each selected dataset's flow in graph order, then the staged views
    committed and gold published; a failure anywhere stops the update and publishes nothing."""

    def __init__(
        self,
        paths: DataPaths,
        graph: Graph,
        served: ServedTables,
        *,
        full_refresh: bool,
        refresh: list[str] | None,
        full_refresh_selection: list[str] | None,
        progress: ProgressCallback | None,
        memory_limit: str = DEFAULT_MEMORY_LIMIT,
        cause: str = "USER_ACTION",
        cancel: threading.Event | None = None,
        update_id: str | None = None,
        reserve_bytes: int = DEFAULT_RESERVE_BYTES,
        key_index_cells: int | None = None,
    ) -> None:
        self.paths = paths
        self.cause = cause
        self.canceled = cancel or threading.Event()
        self.graph = graph
        self.served = served
        self.update_id = update_id or str(uuid.uuid4())
        self.reserve_bytes = reserve_bytes
        self.progress = progress or (lambda dataset, state: None)
        chosen_full = set(graph.check_names(full_refresh_selection or []))
        chosen = set(graph.check_names(refresh or []))
        everything = set(graph.datasets)
        spill = paths.root / "tmp" / "engine"
        spill.mkdir(parents=True, exist_ok=True)
        # Row order is left to DuckDB (tables have none; what needs an order says ORDER BY): keeping the
        # order of wide batches under the memory limit slowed parsing property changes.
        con = duckdb.connect(
            config={"memory_limit": memory_limit, "temp_directory": str(spill), "preserve_insertion_order": False}
        )
        con.execute("SET TimeZone = 'UTC'")
        # A Delta table's files never change, and an update binds views over the same files dozens of
        # times: each bind read every file's footer again (tens of ms each for a table's large files).
        con.execute("SET parquet_metadata_cache = true")
        self.context = UpdateContext(
            paths,
            graph,
            self.update_id,
            con,
            full_refresh=everything if full_refresh else chosen_full,
            selected=everything if not (chosen or chosen_full) else chosen | chosen_full,
            key_index_cells=key_index_cells,
        )
        self.events = self.context.events

    def run(self) -> UpdateResult:
        context = self.context
        result = UpdateResult(update_id=self.update_id)
        # Under the pipeline lock, as retiring landing is: landing-fed tables whose pages were retired
        # are their lines' only record, never reset (as Lakeflow keeps a table with
        # `pipelines.reset.allowed = false`); they read new pages only.
        retired, folders = retired_landing(self.paths), self.graph.landing_folders()
        not_reset = sorted(name for name in context.full_refresh if folders.get(name) in retired)
        context.full_refresh = context.full_refresh - set(not_reset)  # a new set: `selected` may be this one
        self.events.emit(
            "create_update",
            f"Update {self.update_id[:8]} started.",
            {
                "create_update": {
                    "cause": self.cause,
                    "full_refresh": sorted(context.full_refresh),
                    "refresh_selection": sorted(context.selected),
                    "not_reset": {
                        name: "its landing pages were retired: it is their only record" for name in not_reset
                    },
                }
            },
        )
        self.events.update_progress("RUNNING")
        current = None
        try:
            stage = "checking free space"
            landing_tables = {name: folder for name, folder in folders.items() if name in context.selected}
            check_free_space(
                self.paths, landing_tables, full_refresh=context.full_refresh, reserve_bytes=self.reserve_bytes
            )
            stage = None
            for dataset in self.graph.ordered():
                current = dataset.name
                if dataset.kind not in FLOWS or dataset.name not in context.selected:
                    continue
                self.stop_if_canceled()
                self.progress(dataset.name, "RUNNING")
                self.events.flow_progress(dataset.name, "RUNNING")
                flow = FLOWS[dataset.kind](context, dataset).run()
                result.flows.append(flow)
                self.progress(dataset.name, flow.status)
            current = None
            self.stop_if_canceled()
            stage = "committing the staged tables"
            commit_staged(context)
            stage = "publishing the serving snapshot"
            result.published = self.publish_if_gold_changed()
            stage = None
            result.state = "COMPLETED"
            self.events.update_progress("COMPLETED")
        except UpdateCanceled:
            # Between two flows: the streaming tables and AUTO CDC targets done are committed whole,
            # views refreshed by key were only staged and are dropped, the next flow never started.
            result.error = f"canceled before {current}" if current else "canceled before committing"
            self.events.update_progress("CANCELED")
            raise UpdateCanceled(f"update {self.update_id} was {result.error}") from None
        except Exception as error:
            where = current or stage
            result.error = f"{where}: {error}" if where else str(error)
            if current:
                self.events.flow_progress(current, "FAILED", error=str(error))
            self.events.update_progress("FAILED", error=result.error)
            raise UpdateFailed(f"update {self.update_id} failed in {result.error}") from error
        finally:
            self.events.flush()
            context.con.close()
            # Only caches: an update that cannot keep them renders its bodies, and lists the
            # landing's folders, again next time.
            with suppress(OSError):
                context.bodies.save(declared_texts(self.graph.datasets.values()))
            with suppress(OSError):
                context.landing_listing.save()
        return result

    def stop_if_canceled(self) -> None:
        if self.canceled.is_set():
            raise UpdateCanceled("canceled")

    def publish_if_gold_changed(self) -> dict | None:
        lakehouse = self.context.lakehouse
        fingerprints = {name: lakehouse.fingerprint(name) for name in self.served if lakehouse.table(name) is not None}
        pointer = read_pointer(self.paths.snapshot_pointer)
        files = served_files(self.paths.snapshots, pointer)
        if files and pointer["fingerprints"] == fingerprints and all(map(is_complete, files.values())):
            return None
        return publish_snapshot(
            lakehouse, self.paths.snapshot_pointer, dict(self.served), self.update_id, connection=self.context.con
        )


def run_update(
    paths: DataPaths,
    graph: Graph,
    served: ServedTables,
    *,
    full_refresh: bool = False,
    refresh: list[str] | None = None,
    full_refresh_selection: list[str] | None = None,
    progress: ProgressCallback | None = None,
    memory_limit: str = DEFAULT_MEMORY_LIMIT,
    cause: str = "USER_ACTION",
    cancel: threading.Event | None = None,
    update_id: str | None = None,
    lock: bool = True,
    reserve_bytes: int = DEFAULT_RESERVE_BYTES,
    key_index_cells: int | None = None,
) -> UpdateResult:
    """Run one update under the pipeline lock; raises PipelineBusy, UpdateFailed or UpdateCanceled.

    `memory_limit` caps DuckDB's memory; beyond it, work spills to MLS2_DATA_DIR/tmp/engine.
    `cause` is recorded in the event log as DLT records it (USER_ACTION, API_CALL, SCHEDULED);
    setting `cancel` stops the update before its next flow (a flow is never stopped half-way: its
    commits are several, a target and its tombstones); nothing is published. `update_id` lets a
    caller name the update before it starts (a new UUID by default). `lock=False` is for a caller
    that already holds the pipeline lock (the pipeline UI holds it from its sync to the update's end).
    An update starts only when the disk has room for what it may write plus `reserve_bytes`
    (`storage.check_free_space`). Tables merged by key of at least `key_index_cells` cells (rows times
    columns) find the rows a change replaces through a key index (`key_index`; None: its default).
    """
    update = Update(
        paths,
        graph,
        served,
        full_refresh=full_refresh,
        refresh=refresh,
        full_refresh_selection=full_refresh_selection,
        memory_limit=memory_limit,
        progress=progress,
        cause=cause,
        cancel=cancel,
        update_id=update_id,
        reserve_bytes=reserve_bytes,
        key_index_cells=key_index_cells,
    )
    if not lock:
        return update.run()
    with UpdateLock(paths, f"update {update.update_id}"):
        return update.run()
