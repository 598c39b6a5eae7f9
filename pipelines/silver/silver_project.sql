/*
name: qobrix_silver.project
kind: auto_cdc
changes_of: {entity: projects, malformed_also: [name_present]}
comment: One row per Qobrix project (development), typed, with its media.
expectations:
  - {name: name_present, constraint: operation = 'delete' OR name IS NOT NULL, on_violation: drop,
     violates: {entity: projects, record: {name: null}}}
  - {name: coordinates_parse, constraint: "coordinates IS NULL OR try_cast(try_element_at(split(coordinates, ','), 1) AS DOUBLE) IS NOT NULL", on_violation: warn,
     violates: {entity: projects, record: {coordinates: 'north,east'}}}
payload:
  abbreviation: string
  amenities_description: string
  assigned_to: string
  availability_status: string
  city: string
  completion_date: date
  construction_stage: string
  coordinates: string
  country: string
  created: timestamp
  created_by: string
  custom_active: boolean
  custom_business_centre: boolean
  custom_concierge_services: boolean
  custom_delivery_date: date
  custom_gym: boolean
  custom_heated_pool: boolean
  custom_kids_play_area: boolean
  custom_list_selling_price_amount: decimal(18,2)
  custom_reception: boolean
  custom_resale: boolean
  custom_restaurant_cafe: boolean
  custom_security_service: boolean
  custom_spa: boolean
  custom_tennis_court: boolean
  custom_valet_parking: boolean
  description: string
  developer_id: string
  distance_from_airport_amount: decimal(18,2)
  distance_from_beach_amount: decimal(18,2)
  distance_from_centre_amount: decimal(18,2)
  distance_from_hospital_amount: decimal(18,2)
  distance_from_rail_station_amount: decimal(18,2)
  distance_from_school_amount: decimal(18,2)
  distance_from_shops_amount: decimal(18,2)
  distance_from_tube_station_amount: decimal(18,2)
  distance_from_university_amount: decimal(18,2)
  energy_efficiency_grade: string
  featured: boolean
  featured_priority: int
  further_features: array<string>
  housing_type: string
  id: string
  last_media_update: timestamp
  legacy_id: string
  location: string
  location_description: string
  map_popup_description: string
  modified: string
  modified_by: string
  municipality: string
  name: string
  number_of_units: int
  post_code: string
  price_to: decimal(18,2)
  project_listing_priority: int
  ref: int
  reference_code: string
  short_description: string
  starting_price_from: decimal(18,2)
  state: string
  street: string
  street_2: string
  trashed: timestamp
  type: string
  video_link: string
  video_links: string
  views: array<string>
  virtual_tour_link: string
  virtual_tour_links: string
  website_listing_date: timestamp
  website_status: string
  website_url: string
  media: >-
    array<struct<id:string,category:struct<name:string>,related_model:string,
    related_id:string,media_type:string,display_order:string,created:string,modified:string,
    file:struct<filename:string,mime_type:string,filesize:string,href:string,
    thumbnails:struct<large:string,medium:string,small:string>>>>
*/
WITH parsed AS (
  SELECT entity, record_key, record_modified, fetched_at, operation, is_malformed, from_json(payload, {{ payload_schema }}) AS p
  FROM STREAM(qobrix_bronze.projects)
)
SELECT
  record_key AS id,
  {{ payload_columns except id, modified }},
  record_modified AS modified,
  entity,
  operation,
  is_malformed
FROM parsed
