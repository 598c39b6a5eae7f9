/*
name: qobrix_silver.viewing_source
kind: auto_cdc
comment: One row per Qobrix property viewing (the link between a property and its meeting), typed.
keys: [id]
sequence_by: modified
apply_as_deletes: operation = 'delete'
except_column_list: [operation, is_malformed]
stored_as_scd_type: 1
expectations:
  - {name: payload_is_json_record, constraint: NOT is_malformed, on_violation: drop,
     violates: {entity: property-viewings, malformed: true, also: [id_present, modified_parses, property_present, meeting_present]}}
  - {name: id_present, constraint: id IS NOT NULL, on_violation: drop,
     violates: {entity: property-viewings, record: {id: null}}}
  - {name: modified_parses, constraint: modified IS NOT NULL, on_violation: drop,
     violates: {entity: property-viewings, record: {modified: '31/12/2025 25:61'}}}
  - {name: property_present, constraint: operation = 'delete' OR property_id IS NOT NULL, on_violation: drop,
     violates: {entity: property-viewings, record: {property_id: null}}}
  - {name: meeting_present, constraint: operation = 'delete' OR viewing_id IS NOT NULL, on_violation: drop,
     violates: {entity: property-viewings, record: {viewing_id: null}}}
*/
WITH parsed AS (
  SELECT record_key, record_modified, fetched_at, operation, is_malformed, from_json(payload, 'struct<created:string,created_by:string,display_order:string,exterior_appeal_assessment:string,further_feedback:string,id:string,interior_appeal_assessment:string,location_assessment:string,modified:string,modified_by:string,price_assessment:string,property_id:string,trashed:string,viewing_id:string,viewing_outcome:string,views_assessment:string>') AS p
  FROM STREAM(qobrix_bronze.property_viewings)
)
SELECT
  record_key AS id,
  try_to_timestamp(p.created) AS created,
  p.created_by AS created_by,
  try_cast(p.display_order AS INT) AS display_order,
  try_cast(p.exterior_appeal_assessment AS INT) AS exterior_appeal_assessment,
  p.further_feedback AS further_feedback,
  try_cast(p.interior_appeal_assessment AS INT) AS interior_appeal_assessment,
  try_cast(p.location_assessment AS INT) AS location_assessment,
  p.modified_by AS modified_by,
  try_cast(p.price_assessment AS INT) AS price_assessment,
  p.property_id AS property_id,
  try_to_timestamp(p.trashed) AS trashed,
  p.viewing_id AS viewing_id,
  try_cast(p.viewing_outcome AS INT) AS viewing_outcome,
  try_cast(p.views_assessment AS INT) AS views_assessment,
  record_modified AS modified,
  operation,
  is_malformed
FROM parsed
