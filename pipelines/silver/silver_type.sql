/*
name: qobrix_silver.{{ table }}
kind: auto_cdc
changes_of: {entity: "{{ entity }}", malformed_also: [code_present]}
comment: "{{ comment }}"
expectations:
  - {name: code_present, constraint: operation = 'delete' OR code IS NOT NULL, on_violation: drop,
     violates: {entity: "{{ entity }}", record: {code: null}}}
payload:
  code: string
  created: timestamp
  created_by: string
  id: string
  modified: string
  modified_by: string
  trashed: timestamp
variants:
  - table: property_type
    entity: property-types
    bronze: property_types
    comment: Qobrix property types, by id (properties refer to them by code).
    payload: {base_type: string, config: string, display_order: int, name: string}
  - table: property_subtype
    entity: property-subtypes
    bronze: property_subtypes
    comment: Qobrix property subtypes, by id (properties refer to them by code).
    payload: {label: string, property_type: string}
*/
WITH parsed AS (
  SELECT entity, record_key, record_modified, fetched_at, operation, is_malformed, from_json(payload, {{ payload_schema }}) AS p
  FROM STREAM(qobrix_bronze.{{ bronze }})
)
SELECT
  record_key AS id,
  {{ payload_columns except id, modified }},
  record_modified AS modified,
  entity,
  operation,
  is_malformed
FROM parsed
