"""How much of RESO DD 2.0 and of Qobrix each gold resource covers, from the mapping files (and gold, if built).

Per resource: the DD 2.0 fields it fills (of the resource's DD fields), its local `X_` fields,
and the source columns its mapping reads. With gold built, also how many of those fields hold
a value in at least one record.
"""

from dataclasses import dataclass, replace

import duckdb
import sqlglot
from sqlglot import exp

from conf.mappings import ResourceMapping, reso_fields, resource_mappings
from pipelines.embedded import Lakehouse, register_delta
from pipelines.spark_sql import SparkSql


@dataclass(frozen=True)
class ResourceCoverage:
    resource: str
    standard: int
    dictionary: int
    local: int
    source_columns: int
    records: int | None = None
    standard_filled: int | None = None
    local_filled: int | None = None


def source_columns(mapping: ResourceMapping) -> set[str]:
    """The `alias.column`s the resource's fields read (joins' keys aside)."""
    columns = set()
    for field in mapping.fields:
        tree = sqlglot.parse_one(mapping.spark_expression(field), dialect=SparkSql)
        columns.update(f"{c.table}.{c.name}" for c in tree.find_all(exp.Column) if c.table)
    return columns


def _filled(lakehouse: Lakehouse, mapping: ResourceMapping) -> tuple[int, set[str]]:
    """The resource's record count and the fields with a value (a non-empty list) in at least one record."""
    table = lakehouse.table(mapping.table)
    if table is None:
        return 0, set()
    con = duckdb.connect()
    register_delta(con, "gold", table)
    counts = ", ".join(
        f'count_if(len("{f.name}") > 0)' if f.is_collection else f'count("{f.name}")' for f in mapping.fields
    )
    row = con.execute(f"SELECT count(*), {counts} FROM gold").fetchall()[0]
    return row[0], {f.name for f, count in zip(mapping.fields, row[1:], strict=True) if count}


def coverage(lakehouse: Lakehouse | None = None) -> list[ResourceCoverage]:
    report = []
    for resource, mapping in resource_mappings().items():
        standard = [f.name for f in mapping.fields if not f.is_local]
        local = [f.name for f in mapping.fields if f.is_local]
        entry = ResourceCoverage(
            resource=resource,
            standard=len(standard),
            dictionary=len(reso_fields(resource)),
            local=len(local),
            source_columns=len(source_columns(mapping)),
        )
        if lakehouse is not None:
            records, filled = _filled(lakehouse, mapping)
            entry = replace(
                entry,
                records=records,
                standard_filled=len(filled.intersection(standard)),
                local_filled=len(filled.intersection(local)),
            )
        report.append(entry)
    return report


def as_markdown(report: list[ResourceCoverage]) -> str:
    with_data = report and report[0].records is not None
    header = "| Resource | DD 2.0 fields filled | X_ fields | Source columns read |"
    rule = "| --- | ---: | ---: | ---: |"
    if with_data:
        header += " Records | DD fields with data | X_ fields with data |"
        rule += " ---: | ---: | ---: |"
    lines = [header, rule]
    for r in report:
        line = f"| {r.resource} | {r.standard} of {r.dictionary} | {r.local} | {r.source_columns} |"
        if with_data:
            line += f" {r.records} | {r.standard_filled} | {r.local_filled} |"
        lines.append(line)
    return "\n".join(lines) + "\n"
