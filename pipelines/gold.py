"""Gold: one materialized view per RESO resource, generated from its mapping file in `conf/mappings/`,
and the RESO Lookup resource listing every lookup those resources use (with the standard values it
lists kept in a view of their own)."""

from conf.mappings import (
    LOOKUP_TABLE,
    FieldMapping,
    ResourceMapping,
    display_name,
    reso_lookups,
    reso_lookups_generated_on,
    resource_mappings,
    spark_literal,
)
from pipelines.declaration import Dataset, Expectation, IncrementalRefresh, Violation

STANDARD_LOOKUPS_TABLE = "reso_gold.standard_lookups"
"""RESO's values of the lookups gold uses: the Lookup's standard rows, not served on their own."""
NOT_A_RESO_VALUE = "Not a RESO value"
"""The value gold rows are given to show a lookup rule catching a value RESO does not list."""


def served_tables() -> dict[str, tuple[str, ...]]:
    """The gold tables the API serves, each with the columns it looks rows up by: the key first, then the
    fields `$expand` follows into it (Media.ResourceRecordKey from Property, ...)."""
    mappings = resource_mappings()
    served = {m.table: [m.key] for m in mappings.values()}
    for mapping in mappings.values():
        for link in mapping.navigation:
            columns = served[mappings[link.resource].table]
            if link.remote not in columns:
                columns.append(link.remote)
    return {**{table: tuple(columns) for table, columns in served.items()}, LOOKUP_TABLE: ("LookupKey",)}


def _allowed_values(field: FieldMapping) -> str:
    return ", ".join(spark_literal(display_name(field.lookup, legacy)) for legacy in field.legacy_values())


def _is_stamped(mapping: ResourceMapping) -> bool:
    """Whether the resource has a ModificationTimestamp field."""
    return any(f.name == "ModificationTimestamp" for f in mapping.fields)


def gold_expectations(mapping: ResourceMapping) -> tuple[Expectation, ...]:
    """Row rules: key present, every lookup value one of RESO's, timestamps present.

    Rules across rows (keys unique, references resolve) are the integrity suite's (`expectations/`), run
    after the update; each view's unique key is enforced by the engine.
    Upstream rules and the mapping's own translations keep landed data from breaking these, so each
    is shown broken by a gold row with the offending value put in (`Violation.row`)."""
    rules = [
        Expectation(f"{mapping.key}_present", f"{mapping.key} IS NOT NULL", "drop", _row_violation(mapping.key, "NULL"))
    ]
    if _is_stamped(mapping):
        rules.append(
            Expectation(
                "modification_timestamp_present",
                "ModificationTimestamp IS NOT NULL",
                "warn",
                _row_violation("ModificationTimestamp", "NULL"),
            )
        )
    # A lookup field whose values are all local (an open lookup such as City) has no rule to keep.
    for field in (f for f in mapping.lookup_fields if f.legacy_values()):
        allowed = _allowed_values(field)
        constraint = (
            f"size(filter({field.name}, value -> NOT value IN ({allowed}))) = 0"
            if field.is_collection
            else f"{field.name} IS NULL OR {field.name} IN ({allowed})"
        )
        foreign = spark_literal(NOT_A_RESO_VALUE)
        example = _row_violation(field.name, f"array({foreign})" if field.is_collection else foreign)
        # A closed translation can only yield RESO values (anything else is a mapping bug: stop);
        # an open lookup may carry local values, which the warning counts.
        rules.append(Expectation(f"{field.name}_is_reso_value", constraint, "warn" if field.open else "fail", example))
    return tuple(rules)


def _row_violation(column: str, expression: str) -> Violation:
    return Violation(row=((column, expression),))


def used_lookups() -> list[str]:
    """Every RESO lookup a gold field takes its values from."""
    return sorted({f.lookup for mapping in resource_mappings().values() for f in mapping.lookup_fields})


def _open_lookup_fields(mapping: ResourceMapping) -> list[FieldMapping]:
    return [field for field in mapping.lookup_fields if field.open]


def _carried_relation(mapping: ResourceMapping) -> str:
    """The name of the query of a gold table's open lookup columns (see `_carried_sql`)."""
    return f"carried_by_{mapping.table.split('.')[-1]}"


def _carried_sql(mapping: ResourceMapping) -> str:
    """A gold table's open lookup columns with its ModificationTimestamp (`modified`), named in the WITH
    clause: a table with list fields and other fields is read by two queries, and DuckDB computes a
    named query read more than once a single time."""
    columns = [field.name for field in _open_lookup_fields(mapping)]
    modified = "ModificationTimestamp" if _is_stamped(mapping) else "CAST(NULL AS TIMESTAMP)"
    return f"{_carried_relation(mapping)} AS (SELECT {', '.join(columns)}, {modified} AS modified FROM {mapping.table})"


def _local_values_sql(mapping: ResourceMapping) -> list[str]:
    """Queries of the values a gold table's open lookup fields carry, each value once with the earliest
    time of the rows carrying it: the single-valued fields grouped in one pass (a grouping set each),
    each list field exploded and grouped. The Lookup is computed whole at every update, and grouping
    the union of every field's values cost far more than grouping each field where it is."""
    carried, fields = _carried_relation(mapping), _open_lookup_fields(mapping)
    single = [field for field in fields if not field.is_collection]
    queries = []
    if single:
        names = " ".join(f"WHEN grouping({field.name}) = 0 THEN {spark_literal(field.lookup)}" for field in single)
        sets = ", ".join(f"({field.name})" for field in single)
        # In each grouping set the other fields are NULL: the one grouped is the value.
        queries.append(
            f"SELECT CASE {names} END AS LookupName, coalesce({', '.join(field.name for field in single)}) "
            f"AS LookupValue, min(modified) AS ModificationTimestamp FROM {carried} GROUP BY GROUPING SETS ({sets})"
        )
    queries += [
        f"SELECT {spark_literal(field.lookup)} AS LookupName, value AS LookupValue, "
        f"min(modified) AS ModificationTimestamp "
        f"FROM (SELECT explode({field.name}) AS value, modified FROM {carried}) exploded GROUP BY value"
        for field in fields
        if field.is_collection
    ]
    return queries


def standard_lookups_sql() -> str:
    """Every value of every lookup gold uses, by its standard and its legacy OData name. A view of its
    own, computed again only when its definition changes: the Lookup reads its rows from a table, where
    the same values written into the Lookup's SQL cost more to plan at each refresh than the rest of
    the Lookup costs to compute."""
    rows = ",\n    ".join(
        f"({spark_literal(f'{lookup}.{legacy}')}, {spark_literal(lookup)}, {spark_literal(standard)}, "
        f"{spark_literal(standard)}, {spark_literal(legacy)})"
        for lookup in used_lookups()
        for legacy, standard in sorted(reso_lookups()[lookup].items())
    )
    return f"""SELECT * FROM VALUES
    {rows}
  AS lookups(LookupKey, LookupName, LookupValue, StandardLookupValue, LegacyODataValue)"""


def lookup_sql() -> str:
    """The Lookup resource: every value of every lookup gold uses (standard and legacy names side by side),
    and the local values open lookups carry in gold (no standard or legacy name).

    A local value is stamped with the earliest ModificationTimestamp of the rows carrying it, not the
    time of the update: its row changes only when those rows do, so replication does not fetch it
    again after every update, and an update that changes no lookup does not rewrite the table. Like
    the records it comes from, a value first carried by a record modified long ago (a backfill) takes
    that record's time, behind what replication by ModificationTimestamp has already read."""
    stamp = spark_literal(reso_lookups_generated_on().replace("T", " ").removesuffix("Z"))
    carried = ",\n".join(_carried_sql(m) for m in resource_mappings().values() if _open_lookup_fields(m))
    local = "\n    UNION ALL\n    ".join(
        query for mapping in resource_mappings().values() for query in _local_values_sql(mapping)
    )
    # A value both standard and carried locally keeps its standard rows only.
    return f"""WITH {carried},
used_locally AS (
    {local}
),
every_value AS (
  SELECT *, CAST({stamp} AS TIMESTAMP) AS ModificationTimestamp, true AS is_standard FROM {STANDARD_LOOKUPS_TABLE}
  UNION ALL
  SELECT
    concat(u.LookupName, ':', u.LookupValue) AS LookupKey,
    u.LookupName,
    u.LookupValue,
    CAST(NULL AS STRING) AS StandardLookupValue,
    CAST(NULL AS STRING) AS LegacyODataValue,
    u.ModificationTimestamp,
    false AS is_standard
  FROM used_locally u
  WHERE u.LookupValue IS NOT NULL
)
SELECT LookupKey, LookupName, LookupValue, StandardLookupValue, LegacyODataValue, ModificationTimestamp
FROM (
  SELECT
    LookupKey,
    LookupName,
    LookupValue,
    StandardLookupValue,
    LegacyODataValue,
    is_standard,
    coalesce(min(ModificationTimestamp), CAST({stamp} AS TIMESTAMP)) AS ModificationTimestamp,
    max(is_standard) OVER (PARTITION BY LookupName, LookupValue) AS has_standard
  FROM every_value
  GROUP BY LookupKey, LookupName, LookupValue, StandardLookupValue, LegacyODataValue, is_standard
)
WHERE is_standard OR NOT has_standard"""


def gold_datasets() -> list[Dataset]:
    datasets = [
        Dataset(
            name=mapping.table,
            kind="materialized_view",
            sql=mapping.select_sql(),
            expectations=gold_expectations(mapping),
            unique_key=mapping.key,
            incremental=IncrementalRefresh.from_spec(mapping.incremental, mapping.path.name)
            if mapping.incremental
            else None,
            comment=f"RESO {mapping.resource}: {mapping.description} Generated from conf/mappings/{mapping.path.name}.",
            source_file=mapping.path,
        )
        for mapping in resource_mappings().values()
    ]
    datasets.append(
        Dataset(
            name=STANDARD_LOOKUPS_TABLE,
            kind="materialized_view",
            sql=standard_lookups_sql(),
            comment="RESO DD 2.0's values of the lookups the gold resources use: the standard rows of the Lookup.",
        )
    )
    datasets.append(
        Dataset(
            name=LOOKUP_TABLE,
            kind="materialized_view",
            sql=lookup_sql(),
            expectations=(
                Expectation("LookupKey_present", "LookupKey IS NOT NULL", "fail", _row_violation("LookupKey", "NULL")),
            ),
            comment="RESO Lookup: every value of every lookup the gold resources use (RESO DD 2.0).",
        )
    )
    return datasets
