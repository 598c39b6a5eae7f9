/*
name: qobrix_silver.location
kind: auto_cdc
comment: Qobrix locations (district, area, subarea).
keys: [id]
sequence_by: modified
apply_as_deletes: operation = 'delete'
except_column_list: [operation, is_malformed]
stored_as_scd_type: 1
expectations:
  - {name: payload_is_json_record, constraint: NOT is_malformed, on_violation: drop,
     violates: {entity: locations, malformed: true, also: [id_present, modified_parses, district_present]}}
  - {name: id_present, constraint: id IS NOT NULL, on_violation: drop,
     violates: {entity: locations, record: {id: null}}}
  - {name: modified_parses, constraint: modified IS NOT NULL, on_violation: drop,
     violates: {entity: locations, record: {modified: '31/12/2025 25:61'}}}
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
  SELECT record_key, record_modified, fetched_at, operation, is_malformed, from_json(payload, {{ payload_schema }}) AS p
  FROM STREAM(qobrix_bronze.locations)
)
SELECT
  record_key AS id,
  {{ payload_columns except id, modified }},
  record_modified AS modified,
  operation,
  is_malformed
FROM parsed
