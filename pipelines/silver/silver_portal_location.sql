/*
name: qobrix_silver.portal_location
kind: materialized_view
comment: >
  Location lookups of the listing portals (Bayut, Bazaraki, Spitogatos, Property Finder AE), as last
  landed; Qobrix refreshes these whole, so the newest landing of each id wins and deletes remove it.
expectations:
  - {name: id_present, constraint: id IS NOT NULL, on_violation: drop,
     violates: {entity: bayut-locations, record: {id: null}}}
*/
WITH landed AS (
  SELECT 'bayut' AS portal, record_key AS id, fetched_at, operation, payload FROM qobrix_bronze.bayut_locations
  UNION ALL
  SELECT 'bazaraki', record_key, fetched_at, operation, payload FROM qobrix_bronze.bazaraki_locations
  UNION ALL
  SELECT 'spitogatos', record_key, fetched_at, operation, payload FROM qobrix_bronze.spitogatos_locations
  UNION ALL
  SELECT 'property_finder_ae', record_key, fetched_at, operation, payload FROM qobrix_bronze.property_finder_a_e_locations
), newest AS (
  SELECT *, row_number() OVER (PARTITION BY portal, id ORDER BY fetched_at DESC, operation) AS rank
  FROM landed
  WHERE NOT coalesce(operation = 'malformed', false)
)
SELECT
  portal,
  id,
  get_json_object(payload, '$.name') AS name,
  get_json_object(payload, '$.label') AS label,
  get_json_object(payload, '$.value') AS value,
  get_json_object(payload, '$.location_hierarchy') AS location_hierarchy,
  get_json_object(payload, '$.qobrix_location_id') AS qobrix_location_id,
  fetched_at
FROM newest
WHERE rank = 1 AND operation = 'upsert'
