/*
name: qobrix_silver.{{ table }}
kind: auto_cdc
comment: "{{ comment }}"
keys: [id]
sequence_by: modified
apply_as_deletes: operation = 'delete'
except_column_list: [operation, is_malformed]
stored_as_scd_type: 1
expectations:
  - {name: payload_is_json_record, constraint: NOT is_malformed, on_violation: drop,
     violates: {entity: "{{ entity }}", malformed: true, also: [id_present, modified_parses, code_present]}}
  - {name: id_present, constraint: id IS NOT NULL, on_violation: drop,
     violates: {entity: "{{ entity }}", record: {id: null}}}
  - {name: modified_parses, constraint: modified IS NOT NULL, on_violation: drop,
     violates: {entity: "{{ entity }}", record: {modified: '31/12/2025 25:61'}}}
  - {name: code_present, constraint: operation = 'delete' OR code IS NOT NULL, on_violation: drop,
     violates: {entity: "{{ entity }}", record: {code: null}}}
payload:
  code: string
  created: timestamp
  created_by: string
  dist: boolean
  field: string
  id: string
  label: string
  modified: string
  modified_by: string
  trashed: timestamp
variants:
  - table: property_feature
    entity: property-features
    bronze: property_features
    comment: Qobrix property feature codes and labels, per field.
    payload: {property_base_types: array<string>, property_types: array<string>}
  - table: project_feature
    entity: project-features
    bronze: project_features
    comment: Qobrix project feature codes and labels, per field.
*/
WITH parsed AS (
  SELECT record_key, record_modified, fetched_at, operation, is_malformed, from_json(payload, {{ payload_schema }}) AS p
  FROM STREAM(qobrix_bronze.{{ bronze }})
)
SELECT
  record_key AS id,
  {{ payload_columns except id, modified }},
  record_modified AS modified,
  operation,
  is_malformed
FROM parsed
