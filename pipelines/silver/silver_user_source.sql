/*
name: qobrix_silver.user_source
kind: auto_cdc
comment: One row per Qobrix user (staff), typed.
keys: [id]
sequence_by: modified
apply_as_deletes: operation = 'delete'
except_column_list: [operation, is_malformed]
stored_as_scd_type: 1
expectations:
  - {name: payload_is_json_record, constraint: NOT is_malformed, on_violation: drop,
     violates: {entity: users, malformed: true, also: [id_present, modified_parses, username_present]}}
  - {name: id_present, constraint: id IS NOT NULL, on_violation: drop,
     violates: {entity: users, record: {id: null}}}
  - {name: modified_parses, constraint: modified IS NOT NULL, on_violation: drop,
     violates: {entity: users, record: {modified: '31/12/2025 25:61'}}}
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
  SELECT record_key, record_modified, fetched_at, operation, is_malformed, from_json(payload, {{ payload_schema }}) AS p
  FROM STREAM(qobrix_bronze.users)
)
SELECT
  record_key AS id,
  {{ payload_columns except id, modified }},
  record_modified AS modified,
  operation,
  is_malformed
FROM parsed
