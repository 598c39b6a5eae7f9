"""SQL files: what the loader generates from a header's payload and variants, and what it refuses."""

from pathlib import Path

import pytest

from pipelines import DeclarationError
from pipelines.sql_files import parse_sql_file

TYPED_BODY = """
WITH parsed AS (
  SELECT record_key, operation, from_json(payload, {{ payload_schema }}) AS p
  FROM STREAM(qobrix_bronze.properties)
)
SELECT
  record_key AS id,
  {{ payload_columns except id }},
  {{ unparsed_fields }} AS unparsed_fields
FROM parsed
"""


def write(tmp_path: Path, header: str, body: str = TYPED_BODY, stem: str = "silver_thing") -> Path:
    path = tmp_path / f"{stem}.sql"
    path.write_text(f"/*\n{header}*/{body}")
    return path


def test_payload_generates_the_schema_typed_columns_and_unparsed_check(tmp_path: Path) -> None:
    header = (
        "name: qobrix_silver.thing\nkind: temporary_view\npayload:\n  id: string\n  bedrooms: int\n"
        "  price: decimal(18, 2)\n  listed: timestamp\n  views: array<string>\n"
        "  extra: struct<email:string,phone:string>\n"
    )
    (dataset,) = parse_sql_file(write(tmp_path, header))
    assert dataset.sql == (
        "WITH parsed AS (\n"
        "  SELECT record_key, operation, from_json(payload, 'struct<id:string,bedrooms:string,price:string,"
        "listed:string,views:array<string>,extra:struct<email:string,phone:string>>') AS p\n"
        "  FROM STREAM(qobrix_bronze.properties)\n"
        ")\n"
        "SELECT\n"
        "  record_key AS id,\n"
        "  try_cast(p.bedrooms AS INT) AS bedrooms,\n"
        "  try_cast(p.price AS DECIMAL(18, 2)) AS price,\n"
        "  try_to_timestamp(p.listed) AS listed,\n"
        "  coalesce(p.views, array()) AS views,\n"
        "  p.extra.email AS extra_email,\n"
        "  p.extra.phone AS extra_phone,\n"
        "  filter(array(\n"
        "    CASE WHEN p.bedrooms IS NOT NULL AND try_cast(p.bedrooms AS INT) IS NULL THEN 'bedrooms' END,\n"
        "    CASE WHEN p.price IS NOT NULL AND try_cast(p.price AS DECIMAL(18, 2)) IS NULL THEN 'price' END,\n"
        "    CASE WHEN p.listed IS NOT NULL AND try_to_timestamp(p.listed) IS NULL THEN 'listed' END\n"
        "  ), field -> field IS NOT NULL) AS unparsed_fields\n"
        "FROM parsed"
    )


def test_a_long_nested_type_may_be_folded_over_lines(tmp_path: Path) -> None:
    header = (
        "name: qobrix_silver.thing\nkind: temporary_view\npayload:\n  id: string\n"
        "  media: >-\n    array<struct<id:string,\n    file:struct<href:string>>>\n"
    )
    (dataset,) = parse_sql_file(write(tmp_path, header))
    assert "'struct<id:string,media:array<struct<id:string,file:struct<href:string>>>>'" in dataset.sql
    assert "coalesce(p.media, array()) AS media" in dataset.sql


TEMPLATE = """name: qobrix_silver.{{ table }}
kind: streaming_table
comment: "{{ comment }}"
expectations:
  - {name: id_present, constraint: id IS NOT NULL, violates: {entity: "{{ entity }}", record: {id: null}}}
payload:
  id: string
  trashed: timestamp
variants:
  - {table: property_feature, entity: property-features, comment: Property features.,
     payload: {property_types: array<string>, dist: boolean}}
  - {table: project_feature, entity: project-features, comment: Project features.}
"""
TEMPLATE_BODY = """
SELECT record_key AS id, {{ payload_columns except id }}
FROM (SELECT record_key, from_json(payload, {{ payload_schema }}) AS p FROM STREAM(qobrix_bronze.{{ table }}s))
"""


def test_a_template_declares_one_dataset_per_variant(tmp_path: Path) -> None:
    property_feature, project_feature = parse_sql_file(write(tmp_path, TEMPLATE, TEMPLATE_BODY, "silver_feature"))
    assert (property_feature.name, property_feature.comment) == ("qobrix_silver.property_feature", "Property features.")
    assert property_feature.expectations[0].violates.entity == "property-features"
    assert project_feature.expectations[0].violates.entity == "project-features"
    assert "'struct<dist:string,id:string,property_types:array<string>,trashed:string>'" in property_feature.sql
    assert "try_cast(p.dist AS BOOLEAN) AS dist,\ncoalesce(p.property_types, array())" in property_feature.sql
    assert project_feature.sql.endswith(
        "FROM (SELECT record_key, from_json(payload, 'struct<id:string,trashed:string>') AS p"
        " FROM STREAM(qobrix_bronze.project_features))"
    )


@pytest.mark.parametrize(
    ("header", "body", "problem"),
    [
        ("payload: {id: string, rooms: integer}\n", TYPED_BODY, r"payload field rooms: unknown type 'integer'"),
        ("payload: {id: string, media: 'array<struct<id:int>>'}\n", TYPED_BODY, "unknown type"),
        ("payload:\n  id: string\n  rooms: int\n  rooms: double\n", TYPED_BODY, "header declares rooms twice"),
        ("", TYPED_BODY, r"\{\{ payload_schema \}\} needs a `payload:`"),
        ("payload: {id: string}\n", "SELECT {{ payload_colums }} FROM x", "unknown placeholder"),
        ("payload: {id: string}\n", "SELECT {{ payload_columns except rooms }}", r"does not declare: \['rooms'\]"),
        ("payload: {id: string}\n", "SELECT from_json(payload, {{ payload_schema except id }})", "takes no except"),
        ("payload: {}\n", TYPED_BODY, "payload maps each field to its type"),
        ("comment: '{{ who }}'\n", "SELECT 1", "placeholders in the header that no variant fills"),
    ],
)
def test_bad_payload_declarations_are_named(tmp_path: Path, header: str, body: str, problem: str) -> None:
    path = write(tmp_path, f"name: qobrix_silver.thing\nkind: temporary_view\n{header}", body)
    with pytest.raises(DeclarationError, match=f"silver_thing.sql: .*{problem}"):
        parse_sql_file(path)


@pytest.mark.parametrize(
    ("template", "stem", "problem"),
    [
        (
            TEMPLATE.replace("payload: {property_types", "payload: {trashed: date, property_types"),
            "silver_feature",
            "payload declares trashed twice",
        ),
        (TEMPLATE, "silver_features", "named after the ending its tables share"),
        (TEMPLATE.replace("table: project_feature, ", ""), "silver_feature", "no variant fills: {{ table }}"),
        (TEMPLATE.replace("entity: project-features", "entity: 7"), "silver_feature", "gives text values"),
        (TEMPLATE.split("variants:")[0] + "variants: []\n", "silver_feature", "one mapping of values per dataset"),
    ],
)
def test_bad_templates_are_named(tmp_path: Path, template: str, stem: str, problem: str) -> None:
    path = write(tmp_path, template, TEMPLATE_BODY, stem)
    with pytest.raises(DeclarationError, match=f"{stem}.sql: .*{problem}"):
        parse_sql_file(path)


CHANGES_BODY = (
    "SELECT record_key AS id, record_modified AS modified, operation, is_malformed FROM STREAM(qobrix_bronze.x)"
)


def test_changes_of_spells_out_the_record_cdc_settings_and_rules(tmp_path: Path) -> None:
    header = (
        "name: qobrix_silver.thing\nkind: auto_cdc\n"
        "changes_of: {entity: locations, malformed_also: [district_present]}\n"
        "sequence_by: change_sequence\n"
        "expectations:\n"
        "  - {name: district_present, constraint: district IS NOT NULL, on_violation: warn}\n"
    )
    (dataset,) = parse_sql_file(write(tmp_path, header, CHANGES_BODY))
    cdc = dataset.cdc
    assert (cdc.keys, cdc.sequence_by, cdc.apply_as_deletes, cdc.except_column_list, cdc.stored_as_scd_type) == (
        ("id",),
        "change_sequence",
        "operation = 'delete'",
        ("entity", "operation", "is_malformed"),
        1,
    )
    rules = {e.name: e for e in dataset.expectations}
    assert list(rules) == [
        "payload_is_json_record", "landed_as_this_entity", "operation_known", "id_present", "modified_parses",
        "district_present",
    ]  # fmt: skip
    assert [rules[name].on_violation for name in rules] == ["drop"] * 5 + ["warn"]
    assert rules["landed_as_this_entity"].constraint == "entity = 'locations'"
    assert rules["landed_as_this_entity"].violates.line == (("entity", "agents"),)
    assert rules["operation_known"].violates.line == (("operation", "explode"),)
    malformed = rules["payload_is_json_record"].violates
    assert (malformed.entity, malformed.malformed) == ("locations", True)
    assert malformed.also == ("operation_known", "id_present", "modified_parses", "district_present")
    assert rules["id_present"].violates.record == (("id", None),)


@pytest.mark.parametrize(
    ("changes_of", "kind", "problem"),
    [
        ("locations", "auto_cdc", "changes_of is {entity"),
        ("{entity: locations, also: [x]}", "auto_cdc", "changes_of is {entity"),
        ("{entity: locations, malformed_also: district_present}", "auto_cdc", "malformed_also lists rule names"),
        ("{entity: locations, malformed_also: [nothing_such]}", "auto_cdc", "does not declare: ['nothing_such']"),
        ("{entity: locations}", "materialized_view", "kind must be auto_cdc"),
    ],
)
def test_bad_changes_of_is_named(tmp_path: Path, changes_of: str, kind: str, problem: str) -> None:
    header = f"name: qobrix_silver.thing\nkind: {kind}\nchanges_of: {changes_of}\n"
    with pytest.raises(DeclarationError) as raised:
        parse_sql_file(write(tmp_path, header, CHANGES_BODY))
    assert "silver_thing.sql" in str(raised.value) and problem in str(raised.value)
