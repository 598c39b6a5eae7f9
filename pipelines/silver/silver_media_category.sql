/*
name: qobrix_silver.media_category
kind: auto_cdc
changes_of: {entity: media/categories, malformed_also: [name_present]}
comment: Qobrix media categories.
expectations:
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
  SELECT entity, record_key, record_modified, fetched_at, operation, is_malformed, from_json(payload, {{ payload_schema }}) AS p
  FROM STREAM(qobrix_bronze.media_categories)
)
SELECT
  record_key AS id,
  {{ payload_columns except id, modified }},
  record_modified AS modified,
  entity,
  operation,
  is_malformed
FROM parsed
