/*
name: qobrix_silver.meeting
kind: auto_cdc
changes_of: {entity: meetings, malformed_also: [times_present, ends_after_start]}
comment: One row per Qobrix meeting (the real time, contact and assignee of a viewing), typed.
expectations:
  - {name: times_present, constraint: operation = 'delete' OR (start_date IS NOT NULL AND end_date IS NOT NULL), on_violation: drop,
     violates: {entity: meetings, record: {end_date: null}, also: [ends_after_start]}}
  - {name: ends_after_start, constraint: operation = 'delete' OR end_date >= start_date, on_violation: warn,
     violates: {entity: meetings, record: {start_date: '2026-03-02 10:00:00', end_date: '2026-03-01 10:00:00'}}}
payload:
  assigned_to: string
  canceled: boolean
  contact: string
  created: timestamp
  created_by: string
  custom_age_group: string
  description: string
  end_date: timestamp
  id: string
  legacy_id: string
  location: string
  modified: string
  modified_by: string
  ref: int
  related_agent: string
  related_opportunity: string
  start_date: timestamp
  subject: string
  trashed: timestamp
  viewing_type: string
*/
WITH parsed AS (
  SELECT entity, record_key, record_modified, fetched_at, operation, is_malformed, from_json(payload, {{ payload_schema }}) AS p
  FROM STREAM(qobrix_bronze.meetings)
)
SELECT
  record_key AS id,
  {{ payload_columns except id, modified }},
  record_modified AS modified,
  entity,
  operation,
  is_malformed
FROM parsed
