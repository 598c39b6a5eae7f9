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
*/
WITH parsed AS (
  SELECT record_key, record_modified, fetched_at, operation, is_malformed, from_json(payload, 'struct<created:string,created_by:string,dist:string,id:string,label:string,media_types:array<string>,mime_types:array<string>,modified:string,modified_by:string,name:string,public:string,related_model:string,signature_required:string,trashed:string,watermark:string>') AS p
  FROM STREAM(qobrix_bronze.media_categories)
)
SELECT
  record_key AS id,
  try_to_timestamp(p.created) AS created,
  p.created_by AS created_by,
  try_cast(p.dist AS BOOLEAN) AS dist,
  p.label AS label,
  coalesce(p.media_types, array()) AS media_types,
  coalesce(p.mime_types, array()) AS mime_types,
  p.modified_by AS modified_by,
  p.name AS name,
  try_cast(p.public AS BOOLEAN) AS public,
  p.related_model AS related_model,
  try_cast(p.signature_required AS BOOLEAN) AS signature_required,
  try_to_timestamp(p.trashed) AS trashed,
  try_cast(p.watermark AS BOOLEAN) AS watermark,
  record_modified AS modified,
  operation,
  is_malformed
FROM parsed
