"""Gold: one materialized view per RESO resource, generated from its mapping file in `conf/mappings/`."""

from conf.mappings import ResourceMapping, resource_mappings, spark_literal
from pipelines.declaration import Dataset, Expectation


def gold_sql(mapping: ResourceMapping) -> str:
    columns = ",\n  ".join(
        f"CAST({field.spark_expression} AS {field.spark_type}) AS {field.name}" for field in mapping.fields
    )
    return f"SELECT\n  {columns}\nFROM {mapping.source}"


def gold_expectations(mapping: ResourceMapping) -> tuple[Expectation, ...]:
    """Every resource's key is present; every translated lookup lands on one of its RESO values."""
    rules = [Expectation(f"{mapping.key}_present", f"{mapping.key} IS NOT NULL", "drop")]
    for field in mapping.fields:
        if field.values:
            allowed = ", ".join(spark_literal(value) for value in sorted(set(field.values.values())))
            rules.append(
                Expectation(f"{field.name}_is_standard", f"{field.name} IS NULL OR {field.name} IN ({allowed})", "warn")
            )
    return tuple(rules)


def gold_datasets() -> list[Dataset]:
    return [
        Dataset(
            name=mapping.table,
            kind="materialized_view",
            sql=gold_sql(mapping),
            expectations=gold_expectations(mapping),
            comment=f"RESO {mapping.resource}, generated from conf/mappings/{mapping.path.name}.",
            source_file=mapping.path,
        )
        for mapping in resource_mappings().values()
    ]
