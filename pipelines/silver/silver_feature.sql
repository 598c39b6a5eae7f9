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
