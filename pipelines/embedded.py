"""This product's pipeline on the embedded engine, and the only door into it (`pipelines._engine`):
the declared graph and the gold tables to serve are handed to the engine, which knows neither."""

from collections.abc import Mapping
from contextlib import suppress
from dataclasses import asdict, dataclass
from typing import Any

from conf.settings import DataPaths
from pipelines._engine.compiled import CompiledBodies, declared_texts
from pipelines._engine.context import COMPILED_BODIES
from pipelines._engine.errors import PipelineBusy, PipelineError, UpdateCanceled, UpdateFailed
from pipelines._engine.events import read_events
from pipelines._engine.lakehouse import Lakehouse, last_data_change, register_changes_since, register_delta
from pipelines._engine.lock import UpdateLock
from pipelines._engine.maintenance import optimize_lakehouse, retire_landing, vacuum_due, vacuum_lakehouse
from pipelines._engine.runner import UpdateResult
from pipelines._engine.runner import run_update as run_on_engine
from pipelines._engine.sql_text import quote
from pipelines._engine.storage import disk_by_layer, human_bytes
from pipelines._engine.storage import space_needed as space_needed_by_engine
from pipelines.declaration import Graph
from pipelines.gold import served_tables
from pipelines.graph import graph_is_built, load_graph
from pipelines.snapshot import publishing_seconds

__all__ = [
    "Lakehouse",
    "Maintenance",
    "PipelineBusy",
    "PipelineError",
    "UpdateCanceled",
    "UpdateFailed",
    "UpdateResult",
    "disk_by_layer",
    "duckdb_query",
    "human_bytes",
    "last_data_change",
    "maintain",
    "maintain_if_due",
    "optimize_lakehouse",
    "pipeline_lock",
    "product_graph",
    "read_events",
    "register_changes_since",
    "register_delta",
    "run_update",
    "space_needed",
    "table_view",
    "update_report",
]


def run_update(paths: DataPaths, *, graph: Graph | None = None, **options: Any) -> UpdateResult:
    """Run one update of `graph` (the product's, by default) under the pipeline lock and publish gold;
    raises PipelineBusy or UpdateFailed. `options` are the engine's (`pipelines._engine.runner.run_update`:
    full_refresh, refresh, full_refresh_selection, progress, memory_limit, cause, cancel, update_id, lock,
    key_index_cells)."""
    return run_on_engine(paths, graph or product_graph(paths), served_tables(), **options)


def update_report(result: UpdateResult) -> dict:
    """What an update did, as JSON: each flow's rows, and the publish after it (its seconds and what
    it did to each served table). `mls2 pipeline run` prints it, from its own update or a server's."""
    published = result.published
    return {
        "update_id": result.update_id,
        "state": result.state,
        "flows": [asdict(flow) for flow in result.flows],
        "published": published
        and {
            "update_id": published["update_id"],
            "seconds": publishing_seconds(published),
            "tables": published.get("tables", {}),
        },
    }


def product_graph(paths: DataPaths) -> Graph:
    """The product's graph. A process's first build takes what each body reads from what earlier
    processes kept in `paths` (`CompiledBodies.kept_references`), instead of tokenizing every body."""
    if graph_is_built():
        return load_graph()
    kept = CompiledBodies(paths.state / COMPILED_BODIES)
    graph = load_graph(kept.kept_references)
    if kept.changed:
        with suppress(OSError):  # Kept only to be faster: a state folder that cannot be written is read again.
            kept.save(declared_texts(graph.datasets.values()))
    return graph


@dataclass(frozen=True)
class Maintenance:
    """What `maintain` removed: data files per table (None: no vacuum) and landing pages per entity
    folder (None: no retirement)."""

    vacuumed: dict[str, int] | None
    retired: dict[str, int] | None


def maintain(paths: DataPaths, retention_hours: int | None, landing_days: float | None) -> Maintenance:
    """Vacuum the lakehouse keeping what versions of the last `retention_hours` use (None: no vacuum; 0
    keeps only the current versions), then retire the landing pages older than `landing_days` whose
    lines bronze holds (None or 0: none; `pipelines._engine.maintenance.retire_landing`)."""
    vacuumed = vacuum_lakehouse(paths, retention_hours) if retention_hours is not None else None
    retired = retire_landing(paths, product_graph(paths).landing_folders(), landing_days) if landing_days else None
    return Maintenance(vacuumed, retired)


def maintain_if_due(paths: DataPaths, retention_hours: int, landing_days: float) -> Maintenance | None:
    """After an update: `maintain` when vacuum or landing retirement is on (a setting above 0) and the
    last one ran a day ago or more (`vacuum_due`); else None."""
    if not (retention_hours or landing_days) or not vacuum_due(paths):
        return None
    return maintain(paths, retention_hours or None, landing_days)


def space_needed(paths: DataPaths, reserve_bytes: int) -> dict[str, int]:
    """What the next update (not a full refresh) is estimated to need on disk, by what takes it
    (`pipelines._engine.storage.space_needed`)."""
    return space_needed_by_engine(
        paths, product_graph(paths).landing_folders(), full_refresh=(), reserve_bytes=reserve_bytes
    )


def duckdb_query(spark_sql: str, *, origin: str, relations: Mapping[str, str] | None = None) -> str:
    """A Spark SQL query over the lakehouse's `schema.table` names, as the embedded engine renders it
    for DuckDB (where each table is the view `"schema"."table"`, or the relation `relations` gives
    for it); raises SqlError naming `origin`. The translation is imported here, not with the module:
    an update does not parse SQL."""
    from pipelines._engine.sql import to_duckdb
    from pipelines.spark_sql import parse

    chosen = relations or {}
    return to_duckdb(parse(spark_sql, origin=origin), lambda name, streaming: chosen.get(name) or table_view(name))


def table_view(name: str) -> str:
    """The DuckDB view a lakehouse table `schema.table` is read through: `"schema"."table"`."""
    return ".".join(map(quote, name.split(".", 1)))


def pipeline_lock(paths: DataPaths, holder: str) -> UpdateLock:
    """The pipeline lock, for work that must not overlap an update (reading every table at one
    moment); entering it raises PipelineBusy while an update runs."""
    return UpdateLock(paths, holder)
