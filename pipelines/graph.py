"""This product's pipeline graph in one place: bronze per entity, silver SQL files, gold per mapping."""

from functools import cache
from pathlib import Path

from pipelines.bronze import bronze_datasets
from pipelines.declaration import Graph, build_graph
from pipelines.gold import gold_datasets
from pipelines.sql_files import load_sql_datasets

PIPELINES_DIR = Path(__file__).parent


@cache
def load_graph() -> Graph:
    """The product's graph, as both executors run it."""
    return build_graph([*bronze_datasets(), *load_sql_datasets(PIPELINES_DIR / "silver"), *gold_datasets()])
