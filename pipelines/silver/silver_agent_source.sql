/*
name: qobrix_silver.agent_source
kind: auto_cdc
changes_of: {entity: agents, malformed_also: [agent_type_known, primary_contact_present]}
comment: One row per Qobrix agent or agency, typed (names come from their primary contacts in qobrix_silver.agent).
expectations:
  - {name: agent_type_known, constraint: "operation = 'delete' OR agent_type IN ('individual_agent', 'agency')", on_violation: drop,
     violates: {entity: agents, record: {agent_type: robot}}}
  - {name: primary_contact_present, constraint: operation = 'delete' OR primary_contact IS NOT NULL, on_violation: warn,
     violates: {entity: agents, record: {primary_contact: null}}}
payload:
  agency: string
  agent_type: string
  agreement_date: date
  commission_1: decimal(18,2)
  commission_2: decimal(18,2)
  commission_3: decimal(18,2)
  created: timestamp
  created_by: string
  description: string
  id: string
  legacy_id: string
  modified: string
  modified_by: string
  name: string
  owner: string
  primary_contact: string
  ref: int
  status: string
  sub_agent_of: string
  trashed: timestamp
*/
WITH parsed AS (
  SELECT entity, record_key, record_modified, fetched_at, operation, is_malformed, from_json(payload, {{ payload_schema }}) AS p
  FROM STREAM(qobrix_bronze.agents)
)
SELECT
  record_key AS id,
  {{ payload_columns except id, modified }},
  record_modified AS modified,
  entity,
  operation,
  is_malformed
FROM parsed
