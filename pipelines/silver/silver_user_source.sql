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
*/
WITH parsed AS (
  SELECT record_key, record_modified, fetched_at, operation, is_malformed, from_json(payload, 'struct<activation_date:string,active:string,company:string,contact_id:string,created:string,created_by:string,department:string,employee_code:string,extra:struct<first_name:string,email:string,phone_mobile:string>,id:string,is_admin:string,is_supervisor:string,legacy_id:string,modified:string,modified_by:string,name:string,phone_extension:string,reports_to:string,role:string,team:string,trashed:string,two_fa_enabled:string,username:string>') AS p
  FROM STREAM(qobrix_bronze.users)
)
SELECT
  record_key AS id,
  try_to_timestamp(p.activation_date) AS activation_date,
  try_cast(p.active AS BOOLEAN) AS active,
  p.company AS company,
  p.contact_id AS contact_id,
  try_to_timestamp(p.created) AS created,
  p.created_by AS created_by,
  p.department AS department,
  p.employee_code AS employee_code,
  p.extra.first_name AS extra_first_name,
  p.extra.email AS extra_email,
  p.extra.phone_mobile AS extra_phone_mobile,
  try_cast(p.is_admin AS BOOLEAN) AS is_admin,
  try_cast(p.is_supervisor AS BOOLEAN) AS is_supervisor,
  p.legacy_id AS legacy_id,
  p.modified_by AS modified_by,
  p.name AS name,
  p.phone_extension AS phone_extension,
  p.reports_to AS reports_to,
  p.role AS role,
  p.team AS team,
  try_to_timestamp(p.trashed) AS trashed,
  try_cast(p.two_fa_enabled AS BOOLEAN) AS two_fa_enabled,
  p.username AS username,
  record_modified AS modified,
  operation,
  is_malformed
FROM parsed
