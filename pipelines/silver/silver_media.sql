/*
name: qobrix_silver.media
kind: materialized_view
comment: >
  Every photo, document and floor plan of every property: its own media, plus its project's photos
  when it inherits them (taken from the project, so they follow the project's changes), one row per
  property and media id, with absolute URLs and display order. A listing's own media whose Qobrix
  owner (related_id) is another listing are dropped: a media id is one Media key.
incremental:
  column: property_id
  inputs: {qobrix_silver.property: id}
  through: {qobrix_silver.project: qobrix_silver.property.project}
expectations:
  - {name: media_id_present, constraint: media_id IS NOT NULL, on_violation: drop,
     violates: {entity: properties, record: {media.0.id: null}}}
  - {name: media_is_this_listings, constraint: "inherited OR owner_model IS DISTINCT FROM 'Properties' OR owner_id IS NULL OR property_id IS NULL OR owner_id = property_id",
     on_violation: drop, violates: {entity: properties, record: {media.0.related_id: another-listing}}}
  - {name: property_present, constraint: property_id IS NOT NULL, on_violation: drop,
     violates: {row: {property_id: 'NULL'}}}
  - {name: url_absolute, constraint: "url IS NULL OR url LIKE 'http%'", on_violation: warn,
     violates: {entity: properties, record: {media.0.file.href: files/photo.jpg}}}
  - {name: category_known, constraint: "category IN ('photos', 'documents', 'floorplans')", on_violation: warn,
     violates: {entity: properties, record: {media.0.category.name: videos}}}
*/
WITH own AS (
  SELECT id AS property_id, CAST(NULL AS STRING) AS project_id, false AS inherited, explode(media) AS m
  FROM qobrix_silver.property
), from_projects AS (
  SELECT p.id AS property_id, pm.project_id AS project_id, true AS inherited, pm.m AS m
  FROM qobrix_silver.property p
  JOIN (SELECT id AS project_id, explode(media) AS m FROM qobrix_silver.project) pm ON pm.project_id = p.project
  WHERE p.inherit_project_media AND pm.m.category.name = 'photos'
), every AS (
  SELECT * FROM own WHERE m.related_model IS NULL OR m.related_model <> 'Projects'
  UNION ALL
  SELECT * FROM from_projects
), typed AS (
  SELECT
    m.id AS media_id,
    property_id,
    project_id,
    inherited,
    m.related_model AS owner_model,
    m.related_id AS owner_id,
    m.category.name AS category,
    m.media_type AS media_type,
    try_cast(m.display_order AS INT) + CASE WHEN inherited THEN 1000 ELSE 0 END AS display_order,
    m.file.filename AS filename,
    m.file.mime_type AS mime_type,
    try_cast(m.file.filesize AS BIGINT) AS filesize,
    m.file.href AS url,
    regexp_extract(m.file.href, '^(https?://[^/]+)', 1) AS host,
    m.file.thumbnails.large AS thumbnail_large,
    m.file.thumbnails.medium AS thumbnail_medium,
    m.file.thumbnails.small AS thumbnail_small,
    try_to_timestamp(m.created) AS created,
    try_to_timestamp(m.modified) AS modified
  FROM every
), ranked AS (
  SELECT *, row_number() OVER (PARTITION BY property_id, media_id ORDER BY inherited, display_order) AS copy
  FROM typed
)
SELECT
  media_id,
  property_id,
  project_id,
  inherited,
  owner_model,
  owner_id,
  category,
  media_type,
  display_order,
  filename,
  mime_type,
  filesize,
  url,
  CASE WHEN thumbnail_large LIKE '/%' THEN concat(host, thumbnail_large) ELSE thumbnail_large END AS thumbnail_large,
  CASE WHEN thumbnail_medium LIKE '/%' THEN concat(host, thumbnail_medium) ELSE thumbnail_medium END AS thumbnail_medium,
  CASE WHEN thumbnail_small LIKE '/%' THEN concat(host, thumbnail_small) ELSE thumbnail_small END AS thumbnail_small,
  created,
  modified
FROM ranked
WHERE copy = 1
