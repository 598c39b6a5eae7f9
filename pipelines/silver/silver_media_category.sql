/*
name: qobrix_silver.media_category
kind: auto_cdc
comment: Qobrix media categories.
keys: [id]
sequence_by: modified
apply_as_deletes: operation = 'delete'
except_column_list: [operation, is_malformed]
stored_as_scd_type: 1
expectations:
  - {name: payload_is_json_record, constraint: NOT is_malformed, on_violation: drop,
     violates: {entity: media/categories, malformed: true, also: [id_present, modified_parses, name_present]}}
  - {name: id_present, constraint: id IS NOT NULL, on_violation: drop,
     violates: {entity: media/categories, record: {id: null}}}
  - {name: modified_parses, constraint: modified IS NOT NULL, on_violation: drop,
     violates: {entity: media/categories, record: {modified: '31/12/2025 25:61'}}}
  - {name: name_present, constraint: operation = 'delete' OR name IS NOT NULL, on_violation: drop,
     violates: {entity: media/categories, record: {name: null}}}
payload:
  created: timestamp
  created_by: string
  dist: boolean
  id: string
  label: string
  media_types: array<string>
  mime_types: array<string>
  modified: string
  modified_by: string
  name: string
  public: boolean
  related_model: string
  signature_required: boolean
  trashed: timestamp
  watermark: boolean
*/
WITH parsed AS (
  SELECT record_key, record_modified, fetched_at, operation, is_malformed, from_json(payload, {{ payload_schema }}) AS p
  FROM STREAM(qobrix_bronze.media_categories)
)
SELECT
  record_key AS id,
  {{ payload_columns except id, modified }},
  record_modified AS modified,
  operation,
  is_malformed
FROM parsed
