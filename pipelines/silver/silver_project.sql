/*
name: qobrix_silver.project
kind: auto_cdc
comment: One row per Qobrix project (development), typed, with its media.
keys: [id]
sequence_by: modified
apply_as_deletes: operation = 'delete'
except_column_list: [operation, is_malformed]
stored_as_scd_type: 1
expectations:
  - {name: payload_is_json_record, constraint: NOT is_malformed, on_violation: drop,
     violates: {entity: projects, malformed: true, also: [id_present, modified_parses, name_present]}}
  - {name: id_present, constraint: id IS NOT NULL, on_violation: drop,
     violates: {entity: projects, record: {id: null}}}
  - {name: modified_parses, constraint: modified IS NOT NULL, on_violation: drop,
     violates: {entity: projects, record: {modified: '31/12/2025 25:61'}}}
  - {name: name_present, constraint: operation = 'delete' OR name IS NOT NULL, on_violation: drop,
     violates: {entity: projects, record: {name: null}}}
  - {name: coordinates_parse, constraint: "coordinates IS NULL OR try_cast(try_element_at(split(coordinates, ','), 1) AS DOUBLE) IS NOT NULL", on_violation: warn,
     violates: {entity: projects, record: {coordinates: 'north,east'}}}
*/
WITH parsed AS (
  SELECT record_key, record_modified, fetched_at, operation, is_malformed, from_json(payload, 'struct<abbreviation:string,amenities_description:string,assigned_to:string,availability_status:string,city:string,completion_date:string,construction_stage:string,coordinates:string,country:string,created:string,created_by:string,custom_active:string,custom_business_centre:string,custom_concierge_services:string,custom_delivery_date:string,custom_gym:string,custom_heated_pool:string,custom_kids_play_area:string,custom_list_selling_price_amount:string,custom_reception:string,custom_resale:string,custom_restaurant_cafe:string,custom_security_service:string,custom_spa:string,custom_tennis_court:string,custom_valet_parking:string,description:string,developer_id:string,distance_from_airport_amount:string,distance_from_beach_amount:string,distance_from_centre_amount:string,distance_from_hospital_amount:string,distance_from_rail_station_amount:string,distance_from_school_amount:string,distance_from_shops_amount:string,distance_from_tube_station_amount:string,distance_from_university_amount:string,energy_efficiency_grade:string,featured:string,featured_priority:string,further_features:array<string>,housing_type:string,id:string,last_media_update:string,legacy_id:string,location:string,location_description:string,map_popup_description:string,modified:string,modified_by:string,municipality:string,name:string,number_of_units:string,post_code:string,price_to:string,project_listing_priority:string,ref:string,reference_code:string,short_description:string,starting_price_from:string,state:string,street:string,street_2:string,trashed:string,type:string,video_link:string,video_links:string,views:array<string>,virtual_tour_link:string,virtual_tour_links:string,website_listing_date:string,website_status:string,website_url:string,media:array<struct<id:string,category:struct<name:string>,related_model:string,related_id:string,media_type:string,display_order:string,created:string,modified:string,file:struct<filename:string,mime_type:string,filesize:string,href:string,thumbnails:struct<large:string,medium:string,small:string>>>>>') AS p
  FROM STREAM(qobrix_bronze.projects)
)
SELECT
  record_key AS id,
  p.abbreviation AS abbreviation,
  p.amenities_description AS amenities_description,
  p.assigned_to AS assigned_to,
  p.availability_status AS availability_status,
  p.city AS city,
  try_cast(p.completion_date AS DATE) AS completion_date,
  p.construction_stage AS construction_stage,
  p.coordinates AS coordinates,
  p.country AS country,
  try_to_timestamp(p.created) AS created,
  p.created_by AS created_by,
  try_cast(p.custom_active AS BOOLEAN) AS custom_active,
  try_cast(p.custom_business_centre AS BOOLEAN) AS custom_business_centre,
  try_cast(p.custom_concierge_services AS BOOLEAN) AS custom_concierge_services,
  try_cast(p.custom_delivery_date AS DATE) AS custom_delivery_date,
  try_cast(p.custom_gym AS BOOLEAN) AS custom_gym,
  try_cast(p.custom_heated_pool AS BOOLEAN) AS custom_heated_pool,
  try_cast(p.custom_kids_play_area AS BOOLEAN) AS custom_kids_play_area,
  try_cast(p.custom_list_selling_price_amount AS DECIMAL(18, 2)) AS custom_list_selling_price_amount,
  try_cast(p.custom_reception AS BOOLEAN) AS custom_reception,
  try_cast(p.custom_resale AS BOOLEAN) AS custom_resale,
  try_cast(p.custom_restaurant_cafe AS BOOLEAN) AS custom_restaurant_cafe,
  try_cast(p.custom_security_service AS BOOLEAN) AS custom_security_service,
  try_cast(p.custom_spa AS BOOLEAN) AS custom_spa,
  try_cast(p.custom_tennis_court AS BOOLEAN) AS custom_tennis_court,
  try_cast(p.custom_valet_parking AS BOOLEAN) AS custom_valet_parking,
  p.description AS description,
  p.developer_id AS developer_id,
  try_cast(p.distance_from_airport_amount AS DECIMAL(18, 2)) AS distance_from_airport_amount,
  try_cast(p.distance_from_beach_amount AS DECIMAL(18, 2)) AS distance_from_beach_amount,
  try_cast(p.distance_from_centre_amount AS DECIMAL(18, 2)) AS distance_from_centre_amount,
  try_cast(p.distance_from_hospital_amount AS DECIMAL(18, 2)) AS distance_from_hospital_amount,
  try_cast(p.distance_from_rail_station_amount AS DECIMAL(18, 2)) AS distance_from_rail_station_amount,
  try_cast(p.distance_from_school_amount AS DECIMAL(18, 2)) AS distance_from_school_amount,
  try_cast(p.distance_from_shops_amount AS DECIMAL(18, 2)) AS distance_from_shops_amount,
  try_cast(p.distance_from_tube_station_amount AS DECIMAL(18, 2)) AS distance_from_tube_station_amount,
  try_cast(p.distance_from_university_amount AS DECIMAL(18, 2)) AS distance_from_university_amount,
  p.energy_efficiency_grade AS energy_efficiency_grade,
  try_cast(p.featured AS BOOLEAN) AS featured,
  try_cast(p.featured_priority AS INT) AS featured_priority,
  coalesce(p.further_features, array()) AS further_features,
  p.housing_type AS housing_type,
  try_to_timestamp(p.last_media_update) AS last_media_update,
  p.legacy_id AS legacy_id,
  p.location AS location,
  p.location_description AS location_description,
  p.map_popup_description AS map_popup_description,
  p.modified_by AS modified_by,
  p.municipality AS municipality,
  p.name AS name,
  try_cast(p.number_of_units AS INT) AS number_of_units,
  p.post_code AS post_code,
  try_cast(p.price_to AS DECIMAL(18, 2)) AS price_to,
  try_cast(p.project_listing_priority AS INT) AS project_listing_priority,
  try_cast(p.ref AS INT) AS ref,
  p.reference_code AS reference_code,
  p.short_description AS short_description,
  try_cast(p.starting_price_from AS DECIMAL(18, 2)) AS starting_price_from,
  p.state AS state,
  p.street AS street,
  p.street_2 AS street_2,
  try_to_timestamp(p.trashed) AS trashed,
  p.type AS type,
  p.video_link AS video_link,
  p.video_links AS video_links,
  coalesce(p.views, array()) AS views,
  p.virtual_tour_link AS virtual_tour_link,
  p.virtual_tour_links AS virtual_tour_links,
  try_to_timestamp(p.website_listing_date) AS website_listing_date,
  p.website_status AS website_status,
  p.website_url AS website_url,
  coalesce(p.media, array()) AS media,
  record_modified AS modified,
  operation,
  is_malformed
FROM parsed
