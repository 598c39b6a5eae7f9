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

from conf.files import load_yaml
from conf.mappings import FieldMapping, MappingError, ResourceMapping, resource_mappings, spark_literal

SUITES_DIR = Path(__file__).with_name("suites")
SEVERITIES = ("critical", "warning", "info")
ENGINES = ("embedded", "spark")
MAPPED = re.compile(r"\{mapped (\w+)\.(\w+)\}")
FROM = re.compile(r"\{from (\w+)\}")
REFERENCE = re.compile(r"\{reference (\w+)\.(\w+)\}")
SERVED_LOOKUP_VALUES = "{served lookup values}"


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
class SuiteDataset:
    name: str
    sql: str
    engines: tuple[str, ...] = ENGINES
    """The engines it applies to: the served snapshot, for one, exists only on the embedded engine."""


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
        "LEFT JOIN (SELECT DISTINCT LookupName, LookupValue FROM reso_gold.lookup) l "
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


def _dataset(suite: str, name: str, spec: object) -> SuiteDataset:
    if isinstance(spec, str):
        return SuiteDataset(name, _expanded(spec, suite))
    if not isinstance(spec, dict) or not isinstance(spec.get("sql"), str) or set(spec) - {"sql", "engines"}:
        raise SuiteError(f"suite {suite}, dataset {name}: give its SQL, or `sql` and `engines`")
    engines = tuple(spec.get("engines", ENGINES))
    if not engines or set(engines) - set(ENGINES):
        raise SuiteError(f"suite {suite}, dataset {name}: `engines` are some of {', '.join(ENGINES)}")
    return SuiteDataset(name, _expanded(spec["sql"], suite), engines)


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
        expectations.append(
            SuiteExpectation(
                number, spec["dataset"], str(spec["type"]), dict(spec.get("kwargs") or {}), severity, spec.get("key")
            )
        )
    if not expectations:
        raise SuiteError(f"suite {name} ({path.name}): no expectations")
    return Suite(name, str(document.get("description", "")), datasets, tuple(expectations))


@cache
def suites() -> tuple[Suite, ...]:
    return tuple(load_suite(path) for path in sorted(SUITES_DIR.glob("*.yaml")))
