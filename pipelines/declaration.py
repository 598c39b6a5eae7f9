"""The pipeline declaration: datasets, expectations, AUTO CDC settings and the graph they make,
executor-neutral.

The shapes mirror Lakeflow Declarative Pipelines (`pyspark.pipelines` / `dlt`): an executor is
handed a `Graph` and runs it; nothing here knows how.
"""

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Literal

DatasetKind = Literal["streaming_table", "materialized_view", "temporary_view", "auto_cdc"]
OnViolation = Literal["warn", "drop", "fail"]
SCHEMAS = ("qobrix_bronze", "qobrix_silver", "reso_gold")
LANDING_SCHEMA = "landing"
"""Pseudo-schema of the landing relations bronze reads: `STREAM(landing.properties)`."""


class DeclarationError(ValueError):
    """A dataset declaration is incomplete or contradicts itself."""


@dataclass(frozen=True)
class Violation:
    """An example that breaks an expectation, declared beside it so a test proves the rule bites.

    Landing data of `entity`: a landed record with `record`'s fields set (a dotted path such as
    `media.0.id` reaches into lists and objects), a landing line with `line`'s fields set, or a line
    that is not JSON (`malformed`). A rule that no landed record can reach (an earlier rule drops
    such rows, or the dataset's own expressions cannot yield the value) is shown by `row`: one of
    the dataset's rows with columns replaced by Spark SQL expressions. `also` names the other rules
    of the same dataset the example cannot help breaking. Executors ignore examples.
    """

    entity: str | None = None
    record: tuple[tuple[str, object], ...] = ()
    line: tuple[tuple[str, object], ...] = ()
    malformed: bool = False
    row: tuple[tuple[str, str], ...] = ()
    also: tuple[str, ...] = ()

    @classmethod
    def from_spec(cls, spec: object, origin: str) -> "Violation":
        """From a header's `violates: {entity: e, record: {...} | line: {...} | malformed: true}` or
        `violates: {row: {column: expression}}`, each with an optional `also: [rule, ...]`."""
        allowed = {"entity", "record", "line", "malformed", "row", "also"}
        if not isinstance(spec, dict) or not set(spec) <= allowed:
            raise DeclarationError(f"{origin}: violates takes {sorted(allowed)}, got {spec!r}")
        shapes = [key for key in ("record", "line", "malformed", "row") if spec.get(key)]
        if len(shapes) != 1 or (shapes != ["row"]) != ("entity" in spec):
            raise DeclarationError(
                f"{origin}: violates is an `entity` with one of record, line or malformed, or a `row`, got {spec!r}"
            )
        for key in ("record", "line", "row"):
            if key in spec and not isinstance(spec[key], dict):
                raise DeclarationError(f"{origin}: violates {key} maps fields to values, got {spec[key]!r}")
        row = spec.get("row") or {}
        if not all(isinstance(value, str) for value in row.values()):
            raise DeclarationError(
                f"{origin}: violates row gives each column a Spark SQL expression (quote NULL), got {row!r}"
            )
        also = spec.get("also") or []
        if not isinstance(also, list):
            raise DeclarationError(f"{origin}: violates also lists rule names, got {also!r}")
        return cls(
            entity=spec.get("entity"),
            record=tuple((spec.get("record") or {}).items()),
            line=tuple((spec.get("line") or {}).items()),
            malformed=bool(spec.get("malformed")),
            row=tuple(row.items()),
            also=tuple(str(name) for name in also),
        )


@dataclass(frozen=True)
class Expectation:
    """A named Spark SQL boolean constraint and what to do with rows that break it."""

    name: str
    constraint: str
    on_violation: OnViolation = "warn"
    violates: Violation | None = field(default=None, compare=False)
    """An example breaking the rule (tests prove every rule with one)."""


@dataclass(frozen=True)
class AutoCdc:
    """Settings of `create_auto_cdc_flow`: how change rows become the target's rows."""

    keys: tuple[str, ...]
    sequence_by: str
    apply_as_deletes: str | None = None
    column_list: tuple[str, ...] | None = None
    except_column_list: tuple[str, ...] | None = None
    stored_as_scd_type: Literal[1, 2] = 1
    track_history_column_list: tuple[str, ...] | None = None
    track_history_except_column_list: tuple[str, ...] | None = None


@dataclass(frozen=True)
class IncrementalRefresh:
    """How the embedded engine refreshes a materialized view from what changed instead of whole.

    The view's rows whose `column` holds K come from the rows of each input in `inputs` whose key
    column (the value in `inputs`) holds K, and from the whole of every other input. So when only
    those inputs changed since the view's last refresh, and the update knows the keys they changed,
    only those keys' rows are computed again (row-based maintenance). A change to the row of key K
    of an input in `through` changes only the view's rows for the keys of the keyed input rows whose
    column (`schema.table.column`) holds K: a project reaches the listings whose `project` it is, and
    the listings recomputed read only the projects they name. Databricks plans incremental
    refreshes on its own and is not told this.
    """

    column: str
    inputs: tuple[tuple[str, str], ...]
    through: tuple[tuple[str, str, str], ...] = ()
    """(input, keyed input, that input's column holding the input's key)."""

    @classmethod
    def from_spec(cls, spec: object, origin: str) -> "IncrementalRefresh":
        """From a declaration's `incremental: {column: c, inputs: {schema.table: key, ...},
        through: {schema.table: schema.table.column, ...}}` (`through` optional)."""
        if not isinstance(spec, dict) or not {"column", "inputs"} <= set(spec) <= {"column", "inputs", "through"}:
            raise DeclarationError(
                f"{origin}: incremental takes `column`, `inputs` and optionally `through`, got {spec!r}"
            )
        inputs = spec["inputs"]
        if not isinstance(inputs, dict) or not inputs:
            raise DeclarationError(f"{origin}: incremental inputs map each input to its key column, got {inputs!r}")
        pairs = tuple((str(name), str(key)) for name, key in inputs.items())
        through = spec.get("through") or {}
        if not isinstance(through, dict):
            raise DeclarationError(f"{origin}: incremental through maps an input to a keyed input's column")
        links = []
        for name, reference in through.items():
            via, _, column = str(reference).rpartition(".")
            if via not in dict(pairs) or not column:
                raise DeclarationError(
                    f"{origin}: incremental through {name}: {reference!r} is not `input.column` of a keyed input"
                )
            links.append((str(name), via, column))
        return cls(column=str(spec["column"]), inputs=pairs, through=tuple(links))

    def key_of(self, name: str) -> str | None:
        """The key column of input `name`, or None when the view reads all of it for every row."""
        return dict(self.inputs).get(name)

    def through_of(self, name: str) -> tuple[str, str] | None:
        """The keyed input and its column a change to input `name` reaches the view's rows through."""
        return next(((via, column) for input_name, via, column in self.through if input_name == name), None)

    def describe(self) -> str:
        """The declaration in a line per part: the view's column = each keyed input's key, then each
        input followed through a keyed input's column."""
        keyed = f"{self.column} = " + ", ".join(f"{name}.{key}" for name, key in self.inputs)
        return "\n".join([keyed, *(f"{name} via {via}.{column}" for name, via, column in self.through)])

    @property
    def follows(self) -> list[str]:
        """Every input whose changes the view takes by key."""
        return [name for name, _ in self.inputs] + [name for name, _, _ in self.through]


@dataclass(frozen=True)
class LandingSource:
    """A bronze table's input: the landing folder of one Qobrix entity (Auto Loader on Databricks)."""

    entity: str


@dataclass(frozen=True)
class Dataset:
    """One node of the graph. `name` is `schema.table`; SQL bodies refer to others by that name.

    For `auto_cdc`, `sql` is the change feed (a streaming query) and `cdc` says how to apply it.
    For a bronze table, `landing` names the entity whose files feed `STREAM(landing)`.
    """

    name: str
    kind: DatasetKind
    sql: str
    expectations: tuple[Expectation, ...] = ()
    cdc: AutoCdc | None = None
    landing: LandingSource | None = None
    incremental: IncrementalRefresh | None = None
    unique_key: str | None = None
    """A column no two rows may share. Of the rows sharing a key, the first by `incremental.column`
    (else the key), then by content, keeps it; the others are dropped into quarantine under
    `<key>_unique`: one bad record cannot stop every update on a duplicate key."""
    comment: str = ""
    source_file: Path | None = None
    depends_on: tuple[str, ...] = field(default=(), compare=False)
    """Datasets the body reads (set when the graph is built)."""
    streams: tuple[str, ...] = field(default=(), compare=False)
    """What the body reads incrementally, `STREAM(name)`, landing relations included (set with `depends_on`)."""

    @property
    def schema(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def table(self) -> str:
        return self.name.split(".", 1)[1]

    @property
    def unique_rule(self) -> str | None:
        """The rule name rows losing their unique key are quarantined under."""
        return f"{self.unique_key}_unique" if self.unique_key else None

    @property
    def landing_relation(self) -> str | None:
        """The landing relation a bronze body streams (`landing.<entity>`), if it reads one."""
        return next((name for name in self.streams if name.startswith(f"{LANDING_SCHEMA}.")), None)

    def validate(self) -> None:
        if self.name.count(".") != 1 or self.schema not in SCHEMAS:
            raise DeclarationError(f"{self.name}: a dataset name is `schema.table` with schema one of {SCHEMAS}")
        if (self.kind == "auto_cdc") != (self.cdc is not None):
            raise DeclarationError(f"{self.name}: AUTO CDC settings belong to, and only to, kind auto_cdc")
        if self.cdc and self.cdc.column_list and self.cdc.except_column_list:
            raise DeclarationError(f"{self.name}: give column_list or except_column_list, not both")
        if not self.sql.strip():
            raise DeclarationError(f"{self.name}: empty SQL body")
        if self.incremental and self.kind != "materialized_view":
            raise DeclarationError(f"{self.name}: incremental refresh belongs to materialized views")
        if self.unique_key and self.kind != "materialized_view":
            raise DeclarationError(f"{self.name}: a unique key belongs to materialized views")
        names = [expectation.name for expectation in self.expectations]
        if self.unique_rule:
            names.append(self.unique_rule)
        if len(names) != len(set(names)):
            raise DeclarationError(f"{self.name}: expectation names repeat: {names}")
        for expectation in self.expectations:
            unknown = set(expectation.violates.also if expectation.violates else ()) - set(names) - {expectation.name}
            if unknown:
                raise DeclarationError(
                    f"{self.name}: the example breaking {expectation.name} also names unknown rules {sorted(unknown)}"
                )


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

    def landing_folders(self) -> dict[str, str]:
        """Each landing-fed (bronze) table's entity folder, by table name."""
        return {dataset.name: dataset.landing.entity for dataset in self.ordered() if dataset.landing}


References = Callable[[str, str], tuple[set[str], set[str]]]
"""What a body reads, from its text and its dataset's name: (whole reads, `STREAM(...)` reads)."""


def tokenized_references(sql: str, origin: str) -> tuple[set[str], set[str]]:
    # Imported here: a process whose graph comes from kept references (`CompiledBodies`) never tokenizes.
    from pipelines.spark_sql import table_references

    return table_references(sql, origin=origin)


def with_dependencies(dataset: Dataset, references: References = tokenized_references) -> Dataset:
    reads, streams = references(dataset.sql, dataset.name)
    return replace(
        dataset,
        depends_on=tuple(sorted(n for n in reads | streams if not n.startswith(f"{LANDING_SCHEMA}."))),
        streams=tuple(sorted(streams)),
    )


def build_graph(datasets: list[Dataset], references: References = tokenized_references) -> Graph:
    """The graph of `datasets`, each depending on what its body reads (`references`: by default from
    the body's tokens)."""
    by_name: dict[str, Dataset] = {}
    for dataset in datasets:
        dataset.validate()
        if dataset.name in by_name:
            raise DeclarationError(f"dataset {dataset.name} is declared twice")
        by_name[dataset.name] = with_dependencies(dataset, references)
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
