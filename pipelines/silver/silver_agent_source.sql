/*
name: qobrix_silver.agent_source
kind: auto_cdc
comment: One row per Qobrix agent or agency, typed (names come from their primary contacts in qobrix_silver.agent).
keys: [id]
sequence_by: modified
apply_as_deletes: operation = 'delete'
except_column_list: [operation, is_malformed]
stored_as_scd_type: 1
expectations:
  - {name: payload_is_json_record, constraint: NOT is_malformed, on_violation: drop,
     violates: {entity: agents, malformed: true, also: [id_present, modified_parses, agent_type_known, primary_contact_present]}}
  - {name: id_present, constraint: id IS NOT NULL, on_violation: drop,
     violates: {entity: agents, record: {id: null}}}
  - {name: modified_parses, constraint: modified IS NOT NULL, on_violation: drop,
     violates: {entity: agents, record: {modified: '31/12/2025 25:61'}}}
  - {name: agent_type_known, constraint: "operation = 'delete' OR agent_type IN ('individual_agent', 'agency')", on_violation: drop,
     violates: {entity: agents, record: {agent_type: robot}}}
  - {name: primary_contact_present, constraint: operation = 'delete' OR primary_contact IS NOT NULL, on_violation: warn,
     violates: {entity: agents, record: {primary_contact: null}}}
*/
WITH parsed AS (
  SELECT record_key, record_modified, fetched_at, operation, is_malformed, from_json(payload, 'struct<agency:string,agent_type:string,agreement_date:string,commission_1:string,commission_2:string,commission_3:string,created:string,created_by:string,description:string,id:string,legacy_id:string,modified:string,modified_by:string,name:string,owner:string,primary_contact:string,ref:string,status:string,sub_agent_of:string,trashed:string>') AS p
  FROM STREAM(qobrix_bronze.agents)
)
SELECT
  record_key AS id,
  p.agency AS agency,
  p.agent_type AS agent_type,
  try_cast(p.agreement_date AS DATE) AS agreement_date,
  try_cast(p.commission_1 AS DECIMAL(18, 2)) AS commission_1,
  try_cast(p.commission_2 AS DECIMAL(18, 2)) AS commission_2,
  try_cast(p.commission_3 AS DECIMAL(18, 2)) AS commission_3,
  try_to_timestamp(p.created) AS created,
  p.created_by AS created_by,
  p.description AS description,
  p.legacy_id AS legacy_id,
  p.modified_by AS modified_by,
  p.name AS name,
  p.owner AS owner,
  p.primary_contact AS primary_contact,
  try_cast(p.ref AS INT) AS ref,
  p.status AS status,
  p.sub_agent_of AS sub_agent_of,
  try_to_timestamp(p.trashed) AS trashed,
  record_modified AS modified,
  operation,
  is_malformed
FROM parsed
