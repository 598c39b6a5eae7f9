"""Bronze: one streaming table per landed Qobrix entity, the payload kept whole.

Generated from the entity catalogue (`conf/entities.yaml`): every entity has the same
bronze shape, so a new entity needs no new SQL.
"""

from conf.entities import Entity, entities
from pipelines.declaration import Dataset, Expectation, LandingSource, Violation

BRONZE_SQL = """
SELECT
  coalesce(entity, '{entity}') AS entity,
  operation,
  sync_id,
  try_to_timestamp(fetched_at) AS fetched_at,
  get_json_object(record, '$.id') AS record_key,
  try_to_timestamp(get_json_object(record, '$.modified')) AS record_modified,
  coalesce(record, _corrupt_record) AS payload,
  _corrupt_record IS NOT NULL AS is_malformed,
  source_file
FROM STREAM(landing.{table})
"""


def bronze_expectations(entity: Entity) -> tuple[Expectation, ...]:
    """Warn-only: bronze keeps every landed line, good or bad; silver decides. Each rule with a line
    of `entity` breaking it (a line that is not JSON has no key or operation either)."""
    return (
        Expectation(
            "payload_is_json_record",
            "NOT is_malformed",
            "warn",
            Violation(entity.name, malformed=True, also=("record_key_present", "operation_known")),
        ),
        Expectation(
            "record_key_present", "record_key IS NOT NULL", "warn", Violation(entity.name, record=(("id", None),))
        ),
        Expectation(
            "operation_known",
            "operation IN ('upsert', 'delete')",
            "warn",
            Violation(entity.name, line=(("operation", "explode"),)),
        ),
    )


def bronze_table_name(entity: Entity) -> str:
    return f"qobrix_bronze.{entity.table}"


def bronze_datasets() -> list[Dataset]:
    return [
        Dataset(
            name=bronze_table_name(entity),
            kind="streaming_table",
            sql=BRONZE_SQL.format(entity=entity.name, table=entity.table).strip(),
            expectations=bronze_expectations(entity),
            landing=LandingSource(entity.folder),
            comment=f"Qobrix {entity.name} as landed: raw payload plus landing metadata.",
        )
        for entity in entities().values()
    ]
