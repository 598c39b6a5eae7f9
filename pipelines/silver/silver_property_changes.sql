/*
name: qobrix_silver.property_changes
kind: temporary_view
comment: >
  Every landed property event, parsed once from the payload and typed; read as a stream by
  qobrix_silver.property (latest version) and qobrix_silver.property_history (price and status history).
payload:
  abuts_green_area: boolean
  additional_features: array<string>
  agent: string
  air_condition: boolean
  alarm: boolean
  apartment_type: string
  appliances: array<string>
  association_amenities: array<string>
  auction_end_date: timestamp
  auction_start_date: timestamp
  bathrooms: int
  beach_front: boolean
  bedrooms: int
  building_density: double
  building_type: string
  business_transfer_commercial_activity: string
  business_transfer_or_sale: boolean
  business_transfer_price: decimal(18,2)
  cadastral_reference: string
  campaign_id: string
  city: string
  cloned_from: string
  common_swimming_pool: boolean
  community_features: array<string>
  concierge_reception: boolean
  conference: boolean
  construction_stage: string
  construction_type: string
  construction_year: int
  cooling: array<string>
  cooling_type: string
  coordinates: string
  corner_plot: boolean
  country: string
  cover_factor: double
  coverage: int
  covered_area_amount: decimal(18,2)
  covered_parking: int
  covered_verandas_amount: decimal(18,2)
  created: timestamp
  created_by: string
  custom_a_place_in_the_sun_property_type: string
  custom_bazaraki_chosen_phone: string
  custom_bazaraki_disallow_chat: boolean
  custom_bazaraki_exchange: boolean
  custom_bazaraki_location: string
  custom_bazaraki_negotiable_price: boolean
  custom_bazaraki_online_viewing: boolean
  custom_bazaraki_phone_hide: boolean
  custom_bazaraki_registration_block: int
  custom_bazaraki_registration_number: int
  custom_bazaraki_url: string
  custom_commission: decimal(18,2)
  custom_common_area_amount: decimal(18,2)
  custom_delivery_date: date
  custom_distance_from_airport_amount: decimal(18,2)
  custom_distance_from_beach_amount: decimal(18,2)
  custom_distance_from_city_centre_amount: decimal(18,2)
  custom_distance_from_hospital_amount: decimal(18,2)
  custom_distance_from_school_amount: decimal(18,2)
  custom_distance_from_shops_amount: decimal(18,2)
  custom_distance_from_university_amount: decimal(18,2)
  custom_excluded_property: boolean
  custom_exclusive_listing: boolean
  custom_heating: boolean
  custom_loading_bay_amount: decimal(18,2)
  custom_presale: boolean
  custom_properties_groups: array<string>
  custom_property_view: string
  custom_resale: boolean
  custom_rightmove_url: string
  custom_roof_garden: boolean
  custom_sir_code: string
  custom_sir_link: string
  custom_turn_key: boolean
  custom_white_goods: boolean
  customer_parking: int
  description: string
  developer_id: string
  direct_sources: string
  distance_from_airport: double
  distance_from_beach: double
  distance_from_centre: double
  distance_from_hospital: double
  distance_from_rail_station: double
  distance_from_school: double
  distance_from_shops: double
  distance_from_tube_station: double
  distance_from_university: double
  electricity: boolean
  electricity_type: string
  elevated_area: boolean
  elevator: boolean
  enclosed_office_room: boolean
  energy_consumption_rating: string
  energy_consumption_value: double
  energy_efficiency_grade: string
  energy_emission_rating: string
  energy_emission_value: double
  engagement_letter_date: timestamp
  exterior_features: array<string>
  featured: boolean
  featured_priority: int
  fencing: array<string>
  fireplace: boolean
  fireplace_features: array<string>
  floor_number: int
  floor_type: string
  flooring: array<string>
  floors_building: int
  frontage_amount: decimal(18,2)
  furnished: string
  garden_area_amount: decimal(18,2)
  geocode_type: string
  group_id: string
  heating: array<string>
  heating_medium: string
  heating_type: string
  height: double
  home_office: boolean
  hotel_type: string
  house_type: string
  id: string
  ideal_for: string
  industrial_type: string
  inherit_project_media: boolean
  inspection_date: timestamp
  interior_features: array<string>
  internal_area_amount: decimal(18,2)
  investment_type: string
  key_holder_details: string
  kitchen_type: string
  kitchenette: boolean
  kitchens: int
  land_locked: boolean
  land_type: string
  last_media_update: timestamp
  legacy_id: string
  licensed_for: string
  list_rental_price_amount: decimal(18,2)
  list_rental_price_modified: timestamp
  list_selling_price_amount: decimal(18,2)
  list_selling_price_modified: timestamp
  listing_date: date
  living_rooms: int
  location: string
  lot_features: array<string>
  maids_room: boolean
  mezzanine_amount: decimal(18,2)
  minimum_tenancy: int
  modified: string
  modified_by: string
  mountain_view: boolean
  municipality: string
  name: string
  new_build: boolean
  occupancy: string
  office_layout: string
  office_spaces: int
  office_type: string
  original_name: string
  original_ref: string
  original_website_url: string
  other_structures: array<string>
  parking: int
  patio_porch: array<string>
  pets_allowed: boolean
  plot_area_amount: decimal(18,2)
  plus_vat: boolean
  pool_features: array<string>
  post_code: string
  previous_list_rental_price: decimal(18,2)
  previous_list_selling_price: decimal(18,2)
  price_field_amount: decimal(18,2)
  price_per_square: decimal(18,2)
  price_qualifier: string
  private_swimming_pool: boolean
  project: string
  property_of_the_month: boolean
  property_subtype: string
  property_type: string
  reception: boolean
  ref: int
  registered_road: boolean
  renovation_year: int
  rent_frequency: string
  reserve_price_amount: decimal(18,2)
  retail_type: string
  right_of_way: boolean
  roof_garden_area_amount: decimal(18,2)
  sale_rent: string
  salesperson: string
  sea_view: boolean
  secure_door: boolean
  security_features: array<string>
  seller: string
  separate_laundry_room: boolean
  server_room: boolean
  short_description: string
  smart_home: boolean
  solar_water_heater: boolean
  source: string
  source_description: string
  starting_bidding_amount: decimal(18,2)
  state: string
  status: string
  storage_amount: decimal(18,2)
  storage_space: boolean
  store_room: boolean
  storeys_max_floor: int
  street: string
  tenancy_type: string
  total_area_amount: decimal(18,2)
  town_planning_zone: string
  trashed: timestamp
  uncovered_area_amount: decimal(18,2)
  uncovered_parking: int
  uncovered_verandas_amount: decimal(18,2)
  unit_number: string
  verandas: int
  video_link: string
  view: array<string>
  virtual_tour_link: string
  water: boolean
  waterfront_features: array<string>
  wc_bathrooms: int
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
  SELECT
    entity,
    record_key,
    record_modified,
    fetched_at,
    operation,
    is_malformed,
    source_file,
    from_json(payload, {{ payload_schema }}) AS p
  FROM STREAM(qobrix_bronze.properties)
)
SELECT
  record_key AS id,
  {{ payload_columns except id, modified, coordinates, trashed, media }},
  try_cast(try_element_at(split(p.coordinates, ','), 1) AS DOUBLE) AS latitude,
  try_cast(try_element_at(split(p.coordinates, ','), 2) AS DOUBLE) AS longitude,
  p.coordinates AS coordinates,
  try_to_timestamp(p.trashed) AS trashed,
  coalesce(p.media, array()) AS media,
  CASE WHEN operation = 'delete' THEN greatest(record_modified, try_to_timestamp(p.trashed)) ELSE record_modified END AS modified,
  -- The order of a property's versions: a media-only change moves last_media_update, not modified.
  greatest(
    CASE WHEN operation = 'delete' THEN greatest(record_modified, try_to_timestamp(p.trashed)) ELSE record_modified END,
    try_to_timestamp(p.last_media_update)
  ) AS change_sequence,
  {{ unparsed_fields except trashed }} AS unparsed_fields,
  entity,
  operation,
  is_malformed,
  fetched_at,
  source_file
FROM parsed
