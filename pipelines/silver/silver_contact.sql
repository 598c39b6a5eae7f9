/*
name: qobrix_silver.contact
kind: auto_cdc
comment: One row per Qobrix contact (people and companies), typed.
keys: [id]
sequence_by: modified
apply_as_deletes: operation = 'delete'
except_column_list: [operation, is_malformed]
stored_as_scd_type: 1
expectations:
  - {name: payload_is_json_record, constraint: NOT is_malformed, on_violation: drop,
     violates: {entity: contacts, malformed: true, also: [id_present, modified_parses, is_company_known]}}
  - {name: id_present, constraint: id IS NOT NULL, on_violation: drop,
     violates: {entity: contacts, record: {id: null}}}
  - {name: modified_parses, constraint: modified IS NOT NULL, on_violation: drop,
     violates: {entity: contacts, record: {modified: '31/12/2025 25:61'}}}
  - {name: is_company_known, constraint: operation = 'delete' OR is_company IS NOT NULL, on_violation: drop,
     violates: {entity: contacts, record: {is_company: null}}}
  - {name: email_looks_valid, constraint: "email IS NULL OR email LIKE '%_@_%'", on_violation: warn,
     violates: {entity: contacts, record: {email: no-at-sign}}}
*/
WITH parsed AS (
  SELECT record_key, record_modified, fetched_at, operation, is_malformed, from_json(payload, 'struct<assigned_to:string,birthdate:string,city:string,consent_token:string,contact_id:string,country:string,created:string,created_by:string,custom_contact_person_first_name:string,custom_contact_person_last_name:string,custom_mailchimp_subscriber_status:string,custom_works_for:string,description:string,email:string,email_2:string,email_consent:string,first_name:string,group_id:string,id:string,is_company:string,last_name:string,legacy_id:string,marketing_consent:string,modified:string,modified_by:string,name:string,nationality:string,personal_data_cleared:string,phone:string,phone_2:string,phone_3:string,phone_consent:string,post_code:string,postal_consent:string,preferred_contact_method:string,preferred_language:string,ref:string,registration_number:string,role:string,sms_consent:string,state:string,street:string,title:string,trashed:string,vat_number:string,website:string>') AS p
  FROM STREAM(qobrix_bronze.contacts)
)
SELECT
  record_key AS id,
  p.assigned_to AS assigned_to,
  try_cast(p.birthdate AS DATE) AS birthdate,
  p.city AS city,
  p.consent_token AS consent_token,
  p.contact_id AS contact_id,
  p.country AS country,
  try_to_timestamp(p.created) AS created,
  p.created_by AS created_by,
  p.custom_contact_person_first_name AS custom_contact_person_first_name,
  p.custom_contact_person_last_name AS custom_contact_person_last_name,
  p.custom_mailchimp_subscriber_status AS custom_mailchimp_subscriber_status,
  p.custom_works_for AS custom_works_for,
  p.description AS description,
  p.email AS email,
  p.email_2 AS email_2,
  try_cast(p.email_consent AS BOOLEAN) AS email_consent,
  p.first_name AS first_name,
  p.group_id AS group_id,
  try_cast(p.is_company AS BOOLEAN) AS is_company,
  p.last_name AS last_name,
  p.legacy_id AS legacy_id,
  try_cast(p.marketing_consent AS BOOLEAN) AS marketing_consent,
  p.modified_by AS modified_by,
  p.name AS name,
  p.nationality AS nationality,
  try_to_timestamp(p.personal_data_cleared) AS personal_data_cleared,
  p.phone AS phone,
  p.phone_2 AS phone_2,
  p.phone_3 AS phone_3,
  try_cast(p.phone_consent AS BOOLEAN) AS phone_consent,
  p.post_code AS post_code,
  try_cast(p.postal_consent AS BOOLEAN) AS postal_consent,
  p.preferred_contact_method AS preferred_contact_method,
  p.preferred_language AS preferred_language,
  try_cast(p.ref AS INT) AS ref,
  p.registration_number AS registration_number,
  p.role AS role,
  try_cast(p.sms_consent AS BOOLEAN) AS sms_consent,
  p.state AS state,
  p.street AS street,
  p.title AS title,
  try_to_timestamp(p.trashed) AS trashed,
  p.vat_number AS vat_number,
  p.website AS website,
  record_modified AS modified,
  operation,
  is_malformed
FROM parsed
