"""This product's pipeline graph in one place: bronze per entity, silver SQL files, gold per mapping."""

from pathlib import Path

from pipelines.bronze import bronze_datasets
from pipelines.declaration import Dataset, Graph, References, build_graph, tokenized_references
from pipelines.gold import gold_datasets
from pipelines.sql_files import load_sql_datasets

PIPELINES_DIR = Path(__file__).parent


_built: Graph | None = None


def product_datasets() -> list[Dataset]:
    """The product's datasets as declared, before the graph orders them."""
    return [*bronze_datasets(), *load_sql_datasets(PIPELINES_DIR / "silver"), *gold_datasets()]


def load_graph(references: References | None = None) -> Graph:
    """The product's graph, as both executors run it; built once in a process. On that first build
    `references` may say what each body reads (the engine's kept bodies), instead of its tokens."""
    global _built
    if _built is None:
        _built = build_graph(product_datasets(), references or tokenized_references)
    return _built


def graph_is_built() -> bool:
    """Whether this process has built the product's graph (`load_graph`)."""
    return _built is not None
