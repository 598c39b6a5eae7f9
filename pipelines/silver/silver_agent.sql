/*
name: qobrix_silver.agent
kind: materialized_view
comment: >
  Agents, agencies and users as one list (the 2025 version's silver agent); names, emails and phones
  come from their contacts, since Qobrix agents carry no name of their own.
expectations:
  - {name: member_key_present, constraint: member_key IS NOT NULL, on_violation: drop,
     violates: {row: {member_key: 'NULL'}}}
  - {name: name_present, constraint: full_name IS NOT NULL, on_violation: warn,
     violates: {entity: agents, record: {name: null, primary_contact: null}}}
  - {name: email_looks_valid, constraint: "email IS NULL OR email LIKE '%_@_%'", on_violation: warn,
     violates: {row: {email: "'no-at-sign'"}}}
*/
SELECT
  concat('QOBRIX_AGENT_', a.id) AS member_key,
  'agent' AS source,
  a.id AS qobrix_id,
  a.ref AS qobrix_ref,
  a.agent_type AS agent_type,
  a.agency AS agency_id,
  a.status AS agreement_status,
  a.agreement_date AS agreement_date,
  a.commission_1 AS commission,
  c.is_company AS is_company,
  c.first_name AS first_name,
  c.last_name AS last_name,
  coalesce(a.name, c.name) AS full_name,
  c.title AS title,
  c.email AS email,
  c.phone AS phone,
  c.phone_2 AS mobile_phone,
  c.street AS street,
  c.city AS city,
  c.state AS state,
  c.post_code AS post_code,
  c.country AS country,
  c.website AS website,
  c.preferred_language AS preferred_language,
  CAST(NULL AS STRING) AS username,
  CAST(NULL AS STRING) AS role,
  CAST(NULL AS STRING) AS department,
  CAST(NULL AS STRING) AS employee_code,
  true AS active,
  a.primary_contact AS contact_id,
  a.created AS created,
  greatest(a.modified, c.modified) AS modified
FROM qobrix_silver.agent_source a
LEFT JOIN qobrix_silver.contact c ON c.id = a.primary_contact
UNION ALL
SELECT
  concat('QOBRIX_USER_', u.id) AS member_key,
  'user' AS source,
  u.id AS qobrix_id,
  CAST(NULL AS INT) AS qobrix_ref,
  CAST(NULL AS STRING) AS agent_type,
  CAST(NULL AS STRING) AS agency_id,
  CAST(NULL AS STRING) AS agreement_status,
  CAST(NULL AS DATE) AS agreement_date,
  CAST(NULL AS DECIMAL(18, 2)) AS commission,
  false AS is_company,
  coalesce(c.first_name, u.extra_first_name) AS first_name,
  c.last_name AS last_name,
  coalesce(u.name, c.name) AS full_name,
  c.title AS title,
  coalesce(c.email, u.extra_email) AS email,
  c.phone AS phone,
  coalesce(c.phone_2, u.extra_phone_mobile) AS mobile_phone,
  c.street AS street,
  c.city AS city,
  c.state AS state,
  c.post_code AS post_code,
  c.country AS country,
  c.website AS website,
  c.preferred_language AS preferred_language,
  u.username AS username,
  u.role AS role,
  u.department AS department,
  u.employee_code AS employee_code,
  coalesce(u.active, true) AS active,
  u.contact_id AS contact_id,
  u.created AS created,
  greatest(u.modified, c.modified) AS modified
FROM qobrix_silver.user_source u
LEFT JOIN qobrix_silver.contact c ON c.id = u.contact_id
