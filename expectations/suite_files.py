"""The integrity suites as data (`expectations/suites/*.yaml`): datasets as Spark SQL (the
pipeline's dialect: run as written on Spark, translated for the embedded engine's DuckDB) over the
lakehouse, and Great Expectations expectations on them, each with a severity.

A suite file that cannot be used is refused with its suite and expectation named: an unknown
expectation type, arguments the type does not take, a dataset no expectation can find.
"""

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml
from sqlglot import exp

from conf.files import load_yaml
from conf.mappings import FieldMapping, MappingError, ResourceMapping, resource_mappings, spark_literal
from pipelines.spark_sql import SqlError, parse, references

SUITES_DIR = Path(__file__).with_name("suites")
SEVERITIES = ("critical", "warning", "info")
ENGINES = ("embedded", "spark")
MAPPED = re.compile(r"\{mapped (\w+)\.(\w+)\}")
FROM = re.compile(r"\{from (\w+)\}")
REFERENCE = re.compile(r"\{reference (\w+)\.(\w+)\}")
SERVED_LOOKUP_VALUES = "{served lookup values}"
LOOKUP_TABLE = "reso_gold.lookup"
TABLE_NAME = re.compile(r"\w+\.\w+")
IDENTIFIER = re.compile(r"\w+")
DATASET_KEYS = {"sql", "engines", "by_key", "reads_by_key", "whole_if_changed", "whole_if_removed", "unaffected_by"}
QUARANTINE_TABLE = "mls2_system.quarantine"
QUARANTINE_VIEW = "mls2_quarantine"
"""What the engines give the suites' SQL for the quarantine table(s) (`expectations.engines`)."""
ROW_WISE = {
    "expect_column_values_to_not_be_null", "expect_column_values_to_be_null", "expect_column_values_to_be_in_set",
    "expect_column_values_to_not_be_in_set", "expect_column_values_to_be_between",
    "expect_column_values_to_match_regex", "expect_column_values_to_not_match_regex",
    "expect_column_value_lengths_to_be_between", "expect_column_pair_values_to_be_equal",
    "expect_column_pair_values_a_to_be_greater_than_b",
}  # fmt: skip
"""Expectations whose verdict on rows is the verdict on each row: a dataset checked by key may have these."""


class SuiteError(ValueError):
    """A suite file is malformed; the message names the suite and the expectation."""


@dataclass(frozen=True)
class SuiteExpectation:
    number: int
    dataset: str
    type: str
    kwargs: dict
    severity: str
    key: str | None

    @property
    def label(self) -> str:
        column = self.kwargs.get("column") or ",".join(
            str(self.kwargs[k]) for k in ("column_A", "column_B") if k in self.kwargs
        )
        return f"{self.type}({column})" if column else self.type


@dataclass(frozen=True)
class KeyedBy:
    """A dataset's column naming records, and where their changes show: a row whose `column` holds
    a key can change only when a row of one of `changes`' tables whose expression gives that key
    is added, replaced or deleted."""

    column: str
    changes: tuple[tuple[str, str], ...]
    """(schema.table, Spark SQL expression over its row)."""


@dataclass(frozen=True)
class SuiteDataset:
    name: str
    sql: str
    engines: tuple[str, ...] = ENGINES
    """The engines it applies to: the served snapshot, for one, exists only on the embedded engine."""
    by_key: tuple[KeyedBy, ...] = ()
    """Declared: a run by key checks only the rows whose keys changed since the run before it."""
    reads_by_key: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()
    """Tables its SQL may read restricted to the changed keys, each with (key column, Spark SQL
    expression over its row giving that key): a row with those keys reads only the table's rows that
    give them (tables not listed are read whole)."""
    whole_if_changed: tuple[str, ...] = ()
    """Tables it reads whole (schema.table): when one changed, a run by key checks it whole."""
    whole_if_removed: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """Tables it reads whole, whose rows can only make a row pass: when a value of their columns the table
    had is gone, a run by key checks it whole."""
    unaffected_by: tuple[str, ...] = ()
    """Tables its SQL reads whose changes cannot change its rows (joined for columns it does not keep)."""


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    datasets: dict[str, SuiteDataset]
    expectations: tuple[SuiteExpectation, ...]


def _reference_sql(mapping: ResourceMapping, name: str, target: str) -> str:
    """The records of `mapping` naming another record in `name`: its key, the value, whether it resolves."""
    resource, _, target_field = target.partition(".")
    table = resource_mappings()[resource].table
    return (
        f"SELECT s.{mapping.key} AS record_key, s.{name} AS value, t.{target_field} IS NOT NULL AS resolves "
        f"FROM {mapping.table} s LEFT JOIN (SELECT DISTINCT {target_field} FROM {table}) t "
        f"ON t.{target_field} = s.{name} WHERE s.{name} IS NOT NULL"
    )


def _served_lookup_values_sql() -> str:
    """Every record of gold with lookup values, and whether Lookup lists every one of them. Each
    resource is read once: its lookup values as one array of (field, lookup, value) per record."""

    def item(mapping: ResourceMapping, field: FieldMapping, value: str) -> str:
        name = spark_literal(f"{mapping.resource}.{field.name}")
        return f"named_struct('field', {name}, 'lookup', {spark_literal(field.lookup)}, 'value', {value})"

    selects = []
    for mapping in resource_mappings().values():
        singles = [item(mapping, f, f.name) for f in mapping.lookup_fields if not f.is_collection]
        parts = [f"array({', '.join(singles)})"] if singles else []
        parts += [
            f"transform(coalesce({f.name}, array()), value -> {item(mapping, f, 'value')})"
            for f in mapping.lookup_fields
            if f.is_collection
        ]
        if parts:
            items = parts[0] if len(parts) == 1 else f"concat({', '.join(parts)})"
            selects.append(
                f"SELECT {spark_literal(mapping.resource)} AS resource, {mapping.key} AS record_key, "
                f"explode({items}) AS item FROM {mapping.table}"
            )
    # One row per record: GX then checks a row per listing, not per value (tens of millions of them).
    return (
        "SELECT s.resource, s.record_key, bool_and(l.LookupValue IS NOT NULL) AS listed "
        f"FROM ({' UNION ALL '.join(selects)}) s "
        f"LEFT JOIN (SELECT DISTINCT LookupName, LookupValue FROM {LOOKUP_TABLE}) l "
        "ON l.LookupName = s.item.lookup AND l.LookupValue = s.item.value "
        "WHERE s.item.value IS NOT NULL GROUP BY s.resource, s.record_key"
    )


def _expanded(sql: str, suite: str) -> str:
    """The mappings' own SQL, so a suite checks gold against the mapping files rather than a copy:
    `{from Resource}` (its `from` clause), `{mapped Resource.Field}` (a field's expression),
    `{reference Resource.Field}` (a reference's records) and `{served lookup values}`."""

    def mapping_of(resource: str) -> ResourceMapping:
        try:
            return resource_mappings()[resource]
        except KeyError:
            raise SuiteError(f"suite {suite}: no mapping of the resource {resource}") from None

    def field(match: re.Match) -> str:
        resource, name = match.groups()
        mapping = mapping_of(resource)
        try:
            return f"({mapping.spark_expression(mapping.field(name))})"
        except StopIteration:
            raise SuiteError(f"suite {suite}: no mapped field {resource}.{name}") from None

    def reference(match: re.Match) -> str:
        resource, name = match.groups()
        mapping = mapping_of(resource)
        if name not in mapping.references:
            raise SuiteError(f"suite {suite}: {resource}.{name} is not a reference of conf/mappings")
        return _reference_sql(mapping, name, mapping.references[name])

    sql = sql.replace(SERVED_LOOKUP_VALUES, _served_lookup_values_sql()) if SERVED_LOOKUP_VALUES in sql else sql
    sql = REFERENCE.sub(reference, sql)
    return MAPPED.sub(field, FROM.sub(lambda match: mapping_of(match.group(1)).from_clause, sql))


def _derived(sql: str, suite: str) -> dict:
    """What a dataset that is one placeholder declares for runs by key, from the mappings: a
    reference's records change with the record (its key) and with the record it names (the target's
    field); a record's lookup values with the record, and with the Lookup resource (read whole)."""
    placeholder = sql.strip()
    if placeholder == SERVED_LOOKUP_VALUES:
        keyed = {m.table: m.key for m in resource_mappings().values() if m.lookup_fields}
        lookup = {LOOKUP_TABLE: ["LookupName", "LookupValue"]}
        return {"by_key": {"record_key": keyed}, "reads_by_key": True, "whole_if_removed": lookup}
    match = REFERENCE.fullmatch(placeholder)
    if match is None:
        return {}
    resource, name = match.groups()
    mapping = resource_mappings().get(resource)
    if mapping is None or name not in mapping.references:
        return {}  # `_expanded` names the mistake
    target, _, field = mapping.references[name].partition(".")
    named = resource_mappings()[target].table
    derived = {"by_key": {"record_key": {mapping.table: mapping.key}, "value": {named: field}}}
    if named != mapping.table:
        # A row reads its own record (found by either key); the records it names are read whole (a
        # table naming its own records reads itself whole, for those).
        derived["reads_by_key"] = {mapping.table: {"record_key": mapping.key, "value": name}}
    return derived


def _keyed_by(where: str, spec: object) -> tuple[KeyedBy, ...]:
    if not isinstance(spec, dict) or not spec:
        raise SuiteError(f"{where}: `by_key` maps a column of the dataset to the tables whose changes name its keys")
    keyed = []
    for column, changes in spec.items():
        if not IDENTIFIER.fullmatch(str(column)):
            raise SuiteError(f"{where}: `by_key: {column}` is not a column name")
        if not isinstance(changes, dict) or not changes:
            raise SuiteError(f"{where}: `by_key: {column}` maps tables (schema.table) to the column naming the key")
        for table, expression in changes.items():
            if not TABLE_NAME.fullmatch(str(table)) or not isinstance(expression, str) or not expression.strip():
                raise SuiteError(f"{where}: `by_key: {column}: {table}` is not `schema.table: expression`")
        keyed.append(KeyedBy(str(column), tuple((str(t), e) for t, e in changes.items())))
    return tuple(keyed)


def _reads_by_key(
    where: str, spec: object, keyed: tuple[KeyedBy, ...]
) -> tuple[tuple[str, tuple[tuple[str, str], ...]], ...]:
    """`reads_by_key`: `true` restricts every table `by_key` names by the key it names (one key
    column: with several, a row checked for one key would read another table restricted to the
    other's keys); a mapping restricts only the tables it lists, each by the key columns it gives
    (the others are read whole). A table read restricted must be one `by_key` names under some key
    column: a change to its rows then names the keys of the rows it changes."""
    if spec is False:
        return ()
    if spec is True:
        if len(keyed) > 1:
            raise SuiteError(
                f"{where}: `reads_by_key: true` needs a single `by_key` column; with several, map each table "
                "read by key to the key columns that find its rows"
            )
        return tuple((table, ((keyed[0].column, expr),)) for table, expr in keyed[0].changes)
    if not isinstance(spec, dict) or not spec:
        raise SuiteError(f"{where}: `reads_by_key` is true, false, or maps tables to key columns and expressions")
    followed, columns = {table for k in keyed for table, _ in k.changes}, {k.column for k in keyed}
    for table, named in spec.items():
        if str(table) not in followed:
            raise SuiteError(f"{where}: `reads_by_key: {table}` is not a table `by_key` names")
        if not isinstance(named, dict) or not named or not set(map(str, named)) <= columns:
            raise SuiteError(
                f"{where}: `reads_by_key: {table}` maps key columns of the dataset ({', '.join(sorted(columns))}) "
                "to the expression giving each in the table's rows"
            )
        for column, expression in named.items():
            try:
                parse(f"SELECT {expression} FROM {table}", origin=f"{where}, reads_by_key {table}: {column}")
            except SqlError as error:
                raise SuiteError(str(error)) from None
    return tuple((str(table), tuple((str(c), e) for c, e in named.items())) for table, named in spec.items())


def _tables(where: str, declared: dict, key: str) -> tuple[str, ...]:
    """A declaration's list of tables (`whole_if_changed`, `unaffected_by`), each `schema.table`."""
    tables = declared.get(key, [])
    if not isinstance(tables, list) or not all(TABLE_NAME.fullmatch(str(t)) for t in tables):
        raise SuiteError(f"{where}: `{key}` lists tables as schema.table")
    return tuple(map(str, tables))


def _dataset(suite: str, name: str, spec: object) -> SuiteDataset:
    where = f"suite {suite}, dataset {name}"
    if isinstance(spec, str):
        spec = {"sql": spec}
    if not isinstance(spec, dict) or not isinstance(spec.get("sql"), str) or set(spec) - DATASET_KEYS:
        raise SuiteError(f"{where}: give its SQL, or `sql` and any of {', '.join(sorted(DATASET_KEYS - {'sql'}))}")
    engines = tuple(spec.get("engines", ENGINES))
    if not engines or set(engines) - set(ENGINES):
        raise SuiteError(f"{where}: `engines` are some of {', '.join(ENGINES)}")
    declared = {key: spec[key] for key in DATASET_KEYS - {"sql", "engines"} if key in spec}
    derived = _derived(spec["sql"], suite)
    if declared and derived:
        raise SuiteError(f"{where}: its placeholder declares its keys from the mappings; declare none of them")
    declared = declared or derived
    if "by_key" not in declared and declared:
        raise SuiteError(
            f"{where}: `reads_by_key`, `whole_if_changed`, `whole_if_removed` and `unaffected_by` need `by_key`"
        )
    whole_if_changed = _tables(where, declared, "whole_if_changed")
    whole_if_removed = declared.get("whole_if_removed", {})
    if not isinstance(whole_if_removed, dict) or not all(
        TABLE_NAME.fullmatch(str(table))
        and isinstance(columns, list)
        and columns
        and all(map(IDENTIFIER.fullmatch, map(str, columns)))
        for table, columns in whole_if_removed.items()
    ):
        raise SuiteError(f"{where}: `whole_if_removed` maps tables (schema.table) to the columns whose values count")
    unaffected_by = _tables(where, declared, "unaffected_by")
    by_key = _keyed_by(where, declared["by_key"]) if "by_key" in declared else ()
    dataset = SuiteDataset(
        name,
        _expanded(spec["sql"], suite),
        engines,
        by_key,
        _reads_by_key(where, declared.get("reads_by_key", False), by_key),
        whole_if_changed,
        tuple((str(table), tuple(map(str, columns))) for table, columns in whole_if_removed.items()),
        unaffected_by,
    )
    if dataset.by_key:
        _check_tables_accounted_for(where, dataset)
    return dataset


def _tables_read(where: str, sql: str) -> set[str]:
    """The lakehouse tables a dataset's SQL reads (`mls2_quarantine` stands for mls2_system.quarantine)."""
    try:
        tree = parse(sql, origin=where)
    except SqlError as error:
        raise SuiteError(str(error)) from None
    whole, streamed = references(tree)
    named = {table.name for table in tree.find_all(exp.Table) if not table.db}
    return set(whole | streamed) | ({QUARANTINE_TABLE} if QUARANTINE_VIEW in named else set())


def _check_tables_accounted_for(where: str, dataset: SuiteDataset) -> None:
    """Every table a dataset checked by key reads is declared (its changes name keys, send it whole, or
    cannot change its rows), and every table declared is read: a table added to the SQL, or a
    mistyped name, would otherwise go unnoticed by runs by key."""
    declared = {table for keyed in dataset.by_key for table, _ in keyed.changes}
    declared |= set(dataset.whole_if_changed) | {table for table, _ in dataset.whole_if_removed}
    declared |= set(dataset.unaffected_by)
    read = _tables_read(where, dataset.sql)
    if declared - read:
        raise SuiteError(f"{where}: declares {', '.join(sorted(declared - read))}, which its SQL does not read")
    if read - declared:
        raise SuiteError(
            f"{where}: reads {', '.join(sorted(read - declared))}, which it does not declare: name each under "
            "`by_key`, `whole_if_changed`, `whole_if_removed` or `unaffected_by`"
        )


def _check_by_key(where: str, dataset: SuiteDataset, expectation: SuiteExpectation) -> None:
    """On a dataset checked by key, an expectation must be decided row by row (or be the uniqueness of
    a key column, whose every row of a changed key is checked): the rows not checked are as the run
    before found them, and that run passed them."""
    if not dataset.by_key:
        return
    columns = [keyed.column for keyed in dataset.by_key]
    # Every row holding a changed value of the only key column is checked: duplicates among them are
    # found. With a second key column, a row may be checked for that one alone.
    row_wise = expectation.type in ROW_WISE or (
        expectation.type == "expect_column_values_to_be_unique" and [expectation.kwargs.get("column")] == columns
    )
    if not row_wise or "mostly" in expectation.kwargs:
        unique = f", or the uniqueness of {columns[0]}" if len(columns) == 1 else ""
        raise SuiteError(
            f"{where}: dataset {dataset.name} is checked by key (`by_key`), so its expectations must be decided "
            f"row by row without `mostly` ({', '.join(sorted(ROW_WISE))}{unique}); {expectation.type} is not"
        )


def load_suite(path: Path) -> Suite:
    try:
        document = load_yaml(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError) as error:
        raise SuiteError(f"suite file {path.name} cannot be read: {error}") from None
    name = document.get("suite", path.stem) if isinstance(document, dict) else path.stem
    if not isinstance(document, dict) or not isinstance(document.get("datasets"), dict):
        raise SuiteError(f"suite {name} ({path.name}): needs `datasets` (name: SQL) and `expectations`")
    try:
        datasets = {dataset: _dataset(name, dataset, spec) for dataset, spec in document["datasets"].items()}
    except MappingError as error:
        raise SuiteError(f"suite {name}: the mapping files it reads cannot be used: {error}") from None
    expectations = []
    for number, spec in enumerate(document.get("expectations") or [], start=1):
        where = f"suite {name}, expectation {number}"
        if not isinstance(spec, dict) or not {"dataset", "type"} <= set(spec):
            raise SuiteError(f"{where}: give `dataset`, `type` and `kwargs`")
        if spec["dataset"] not in datasets:
            raise SuiteError(f"{where}: no dataset {spec['dataset']!r} (the suite has {', '.join(datasets)})")
        severity = spec.get("severity", "critical")
        if severity not in SEVERITIES:
            raise SuiteError(f"{where}: severity {severity!r} is not one of {', '.join(SEVERITIES)}")
        unknown = set(spec) - {"dataset", "type", "kwargs", "severity", "key"}
        if unknown:
            raise SuiteError(f"{where}: unknown keys {sorted(unknown)}")
        if not isinstance(spec.get("kwargs") or {}, dict):
            raise SuiteError(f"{where}: `kwargs` is a map of the expectation's arguments")
        expectation = SuiteExpectation(
            number, spec["dataset"], str(spec["type"]), dict(spec.get("kwargs") or {}), severity, spec.get("key")
        )
        _check_by_key(where, datasets[expectation.dataset], expectation)
        expectations.append(expectation)
    if not expectations:
        raise SuiteError(f"suite {name} ({path.name}): no expectations")
    return Suite(name, str(document.get("description", "")), datasets, tuple(expectations))


@cache
def suites() -> tuple[Suite, ...]:
    return tuple(load_suite(path) for path in sorted(SUITES_DIR.glob("*.yaml")))
