"""The whole pipeline graph in one place: bronze per entity, silver SQL files, gold per mapping."""

from dataclasses import dataclass, replace
from functools import cache
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

from pipelines._engine.sql import LANDING_SCHEMA, table_references
from pipelines.bronze import bronze_datasets
from pipelines.declaration import Dataset, DeclarationError
from pipelines.gold import gold_datasets
from pipelines.sql_files import load_sql_datasets

PIPELINES_DIR = Path(__file__).parent


@dataclass(frozen=True)
class Graph:
    datasets: dict[str, Dataset]
    """Every dataset by name, in dependency order (each after everything it reads)."""

    def __getitem__(self, name: str) -> Dataset:
        return self.datasets[name]

    def ordered(self) -> list[Dataset]:
        return list(self.datasets.values())

    def check_names(self, names: list[str]) -> list[str]:
        unknown = [name for name in names if name not in self.datasets]
        if unknown:
            raise DeclarationError(f"unknown datasets: {', '.join(unknown)} (see `mls2 pipeline graph`)")
        return names

    def downstream(self, name: str) -> list[str]:
        return [dataset.name for dataset in self.ordered() if name in dataset.depends_on]


def with_dependencies(dataset: Dataset) -> Dataset:
    reads, streams = table_references(dataset.sql, origin=dataset.name)
    return replace(
        dataset,
        depends_on=tuple(sorted(n for n in reads | streams if not n.startswith(f"{LANDING_SCHEMA}."))),
        streams=tuple(sorted(streams)),
    )


def build_graph(datasets: list[Dataset]) -> Graph:
    by_name: dict[str, Dataset] = {}
    for dataset in datasets:
        dataset.validate()
        if dataset.name in by_name:
            raise DeclarationError(f"dataset {dataset.name} is declared twice")
        by_name[dataset.name] = with_dependencies(dataset)
    for dataset in by_name.values():
        missing = [name for name in dataset.depends_on if name not in by_name]
        if missing:
            raise DeclarationError(f"{dataset.name} reads {', '.join(missing)}, which no dataset declares")
        unread = (
            [name for name in dataset.incremental.follows if name not in dataset.depends_on]
            if dataset.incremental
            else []
        )
        if unread:
            raise DeclarationError(
                f"{dataset.name}: incremental refresh names {', '.join(unread)}, which it does not read"
            )
    try:
        order = TopologicalSorter({name: d.depends_on for name, d in by_name.items()}).static_order()
        return Graph({name: by_name[name] for name in order})
    except CycleError as error:
        raise DeclarationError(f"the graph has a cycle: {' -> '.join(error.args[1])}") from None


@cache
def load_graph() -> Graph:
    """The product's graph, as both executors run it."""
    return build_graph([*bronze_datasets(), *load_sql_datasets(PIPELINES_DIR / "silver"), *gold_datasets()])
