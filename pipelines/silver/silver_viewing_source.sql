/*
name: qobrix_silver.viewing_source
kind: auto_cdc
changes_of: {entity: property-viewings, malformed_also: [property_present, meeting_present]}
comment: One row per Qobrix property viewing (the link between a property and its meeting), typed.
expectations:
  - {name: property_present, constraint: operation = 'delete' OR property_id IS NOT NULL, on_violation: drop,
     violates: {entity: property-viewings, record: {property_id: null}}}
  - {name: meeting_present, constraint: operation = 'delete' OR viewing_id IS NOT NULL, on_violation: drop,
     violates: {entity: property-viewings, record: {viewing_id: null}}}
payload:
  created: timestamp
  created_by: string
  display_order: int
  exterior_appeal_assessment: int
  further_feedback: string
  id: string
  interior_appeal_assessment: int
  location_assessment: int
  modified: string
  modified_by: string
  price_assessment: int
  property_id: string
  trashed: timestamp
  viewing_id: string
  viewing_outcome: int
  views_assessment: int
*/
WITH parsed AS (
  SELECT entity, record_key, record_modified, fetched_at, operation, is_malformed, from_json(payload, {{ payload_schema }}) AS p
  FROM STREAM(qobrix_bronze.property_viewings)
)
SELECT
  record_key AS id,
  {{ payload_columns except id, modified }},
  record_modified AS modified,
  entity,
  operation,
  is_malformed
FROM parsed
