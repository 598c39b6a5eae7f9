/*
name: qobrix_silver.viewing
kind: materialized_view
comment: >
  Property viewings with the meeting behind each: its real start and end, contact, assignee and agent
  (the 2025 version dated viewings by when they were created, not when they happened).
expectations:
  - {name: id_present, constraint: id IS NOT NULL, on_violation: drop,
     violates: {row: {id: 'NULL'}}}
  - {name: meeting_found, constraint: start_date IS NOT NULL, on_violation: drop,
     violates: {entity: property-viewings, record: {viewing_id: no-such-meeting}, also: [ends_after_start]}}
  - {name: ends_after_start, constraint: end_date >= start_date, on_violation: warn,
     violates: {row: {end_date: start_date - INTERVAL 1 DAY}}}
*/
SELECT
  v.id AS id,
  v.property_id AS property_id,
  v.viewing_id AS meeting_id,
  m.start_date AS start_date,
  m.end_date AS end_date,
  m.contact AS contact_id,
  m.assigned_to AS assigned_to,
  m.related_agent AS agent_id,
  m.viewing_type AS viewing_type,
  coalesce(m.canceled, false) AS canceled,
  m.subject AS subject,
  m.description AS description,
  v.display_order AS display_order,
  v.price_assessment AS price_assessment,
  v.location_assessment AS location_assessment,
  v.exterior_appeal_assessment AS exterior_appeal_assessment,
  v.interior_appeal_assessment AS interior_appeal_assessment,
  v.views_assessment AS views_assessment,
  v.viewing_outcome AS viewing_outcome,
  v.further_feedback AS further_feedback,
  v.created AS created,
  greatest(v.modified, m.modified) AS modified
FROM qobrix_silver.viewing_source v
LEFT JOIN qobrix_silver.meeting m ON m.id = v.viewing_id
