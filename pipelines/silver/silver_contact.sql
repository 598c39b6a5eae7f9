/*
name: qobrix_silver.contact
kind: auto_cdc
changes_of: {entity: contacts, malformed_also: [is_company_known]}
comment: One row per Qobrix contact (people and companies), typed.
expectations:
  - {name: is_company_known, constraint: operation = 'delete' OR is_company IS NOT NULL, on_violation: drop,
     violates: {entity: contacts, record: {is_company: null}}}
  - {name: email_looks_valid, constraint: "email IS NULL OR email LIKE '%_@_%'", on_violation: warn,
     violates: {entity: contacts, record: {email: no-at-sign}}}
payload:
  assigned_to: string
  birthdate: date
  city: string
  consent_token: string
  contact_id: string
  country: string
  created: timestamp
  created_by: string
  custom_contact_person_first_name: string
  custom_contact_person_last_name: string
  custom_mailchimp_subscriber_status: string
  custom_works_for: string
  description: string
  email: string
  email_2: string
  email_consent: boolean
  first_name: string
  group_id: string
  id: string
  is_company: boolean
  last_name: string
  legacy_id: string
  marketing_consent: boolean
  modified: string
  modified_by: string
  name: string
  nationality: string
  personal_data_cleared: timestamp
  phone: string
  phone_2: string
  phone_3: string
  phone_consent: boolean
  post_code: string
  postal_consent: boolean
  preferred_contact_method: string
  preferred_language: string
  ref: int
  registration_number: string
  role: string
  sms_consent: boolean
  state: string
  street: string
  title: string
  trashed: timestamp
  vat_number: string
  website: string
*/
WITH parsed AS (
  SELECT entity, record_key, record_modified, fetched_at, operation, is_malformed, from_json(payload, {{ payload_schema }}) AS p
  FROM STREAM(qobrix_bronze.contacts)
)
SELECT
  record_key AS id,
  {{ payload_columns except id, modified }},
  record_modified AS modified,
  entity,
  operation,
  is_malformed
FROM parsed
