/*
name: qobrix_silver.property_subtype
kind: auto_cdc
comment: Qobrix property subtypes, by id (properties refer to them by code).
keys: [id]
sequence_by: modified
apply_as_deletes: operation = 'delete'
except_column_list: [operation, is_malformed]
stored_as_scd_type: 1
expectations:
  - {name: payload_is_json_record, constraint: NOT is_malformed, on_violation: drop,
     violates: {entity: property-subtypes, malformed: true, also: [id_present, modified_parses, code_present]}}
  - {name: id_present, constraint: id IS NOT NULL, on_violation: drop,
     violates: {entity: property-subtypes, record: {id: null}}}
  - {name: modified_parses, constraint: modified IS NOT NULL, on_violation: drop,
     violates: {entity: property-subtypes, record: {modified: '31/12/2025 25:61'}}}
  - {name: code_present, constraint: operation = 'delete' OR code IS NOT NULL, on_violation: drop,
     violates: {entity: property-subtypes, record: {code: null}}}
payload:
  code: string
  created: timestamp
  created_by: string
  id: string
  label: string
  modified: string
  modified_by: string
  property_type: string
  trashed: timestamp
*/
WITH parsed AS (
  SELECT record_key, record_modified, fetched_at, operation, is_malformed, from_json(payload, {{ payload_schema }}) AS p
  FROM STREAM(qobrix_bronze.property_subtypes)
)
SELECT
  record_key AS id,
  {{ payload_columns except id, modified }},
  record_modified AS modified,
  operation,
  is_malformed
FROM parsed
