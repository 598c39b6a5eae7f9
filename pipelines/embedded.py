"""This product's pipeline on the embedded engine, and the only door into it (`pipelines._engine`):
the declared graph and the gold tables to serve are handed to the engine, which knows neither."""

from typing import Any

from conf.settings import DataPaths
from pipelines._engine.errors import PipelineBusy, PipelineError, UpdateFailed
from pipelines._engine.events import read_events
from pipelines._engine.lakehouse import Lakehouse
from pipelines._engine.maintenance import vacuum_due, vacuum_lakehouse
from pipelines._engine.runner import UpdateResult
from pipelines._engine.runner import run_update as run_on_engine
from pipelines.declaration import Graph
from pipelines.gold import served_tables
from pipelines.graph import load_graph

__all__ = [
    "Lakehouse",
    "PipelineBusy",
    "PipelineError",
    "UpdateFailed",
    "UpdateResult",
    "read_events",
    "run_update",
    "vacuum_due",
    "vacuum_lakehouse",
]


def run_update(paths: DataPaths, *, graph: Graph | None = None, **options: Any) -> UpdateResult:
    """Run one update of `graph` (the product's, by default) under the pipeline lock and publish gold;
    raises PipelineBusy or UpdateFailed. `options` are the engine's (`pipelines._engine.runner.run_update`:
    full_refresh, refresh, full_refresh_selection, progress, memory_limit)."""
    return run_on_engine(paths, graph or load_graph(), served_tables(), **options)
