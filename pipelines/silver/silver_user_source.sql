/*
name: qobrix_silver.user_source
kind: auto_cdc
changes_of: {entity: users, malformed_also: [username_present]}
comment: One row per Qobrix user (staff), typed.
expectations:
  - {name: username_present, constraint: operation = 'delete' OR username IS NOT NULL, on_violation: drop,
     violates: {entity: users, record: {username: null}}}
payload:
  activation_date: timestamp
  active: boolean
  company: string
  contact_id: string
  created: timestamp
  created_by: string
  department: string
  employee_code: string
  extra: struct<first_name:string,email:string,phone_mobile:string>
  id: string
  is_admin: boolean
  is_supervisor: boolean
  legacy_id: string
  modified: string
  modified_by: string
  name: string
  phone_extension: string
  reports_to: string
  role: string
  team: string
  trashed: timestamp
  two_fa_enabled: boolean
  username: string
*/
WITH parsed AS (
  SELECT entity, record_key, record_modified, fetched_at, operation, is_malformed, from_json(payload, {{ payload_schema }}) AS p
  FROM STREAM(qobrix_bronze.users)
)
SELECT
  record_key AS id,
  {{ payload_columns except id, modified }},
  record_modified AS modified,
  entity,
  operation,
  is_malformed
FROM parsed
