/*
name: qobrix_silver.location
kind: auto_cdc
changes_of: {entity: locations, malformed_also: [district_present]}
comment: Qobrix locations (district, area, subarea).
expectations:
  - {name: district_present, constraint: operation = 'delete' OR district IS NOT NULL, on_violation: warn,
     violates: {entity: locations, record: {district: null}}}
payload:
  area: string
  coordinates: string
  country: string
  created: timestamp
  created_by: string
  display_priority: int
  dist: boolean
  district: string
  id: string
  modified: string
  modified_by: string
  ref: int
  subarea: string
  trashed: timestamp
*/
WITH parsed AS (
  SELECT entity, record_key, record_modified, fetched_at, operation, is_malformed, from_json(payload, {{ payload_schema }}) AS p
  FROM STREAM(qobrix_bronze.locations)
)
SELECT
  record_key AS id,
  {{ payload_columns except id, modified }},
  record_modified AS modified,
  entity,
  operation,
  is_malformed
FROM parsed
