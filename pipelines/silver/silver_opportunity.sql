/*
name: qobrix_silver.opportunity
kind: auto_cdc
changes_of: {entity: opportunities, malformed_also: [contact_present]}
comment: One row per Qobrix opportunity (a lead or enquiry), typed.
expectations:
  - {name: contact_present, constraint: operation = 'delete' OR contact_name IS NOT NULL, on_violation: warn,
     violates: {entity: opportunities, record: {contact_name: null}}}
payload:
  agent: string
  air_condition: boolean
  area_of_interest: string
  bathrooms_from: int
  bathrooms_to: int
  bedrooms_from: int
  bedrooms_to: int
  business_transfer_commercial_activity: array<string>
  business_transfer_or_sale: boolean
  buy_rent: string
  campaign_id: string
  closed_lost_details: string
  closed_lost_reason_id: string
  common_swimming_pool: boolean
  concierge_reception: boolean
  construction_stage: string
  contact_name: string
  covered_area_from_amount: decimal(18,2)
  covered_area_to_amount: decimal(18,2)
  covered_parking: int
  created: timestamp
  created_by: string
  custom_attended_webinar: boolean
  custom_do_not_contact: boolean
  custom_enquiry_low_budget: boolean
  custom_enquiry_stage_type: string
  custom_general_interest_type: string
  custom_interest_type: string
  custom_internal_area_amount: decimal(18,2)
  custom_mql: boolean
  custom_project: string
  custom_property: string
  custom_sql: boolean
  custom_webinars: array<string>
  description: string
  direct_source: string
  electricity: boolean
  elevator: boolean
  enclosed_office_room: boolean
  enquiry_date: date
  enquiry_subtypes: array<string>
  enquiry_type: string
  frontage_from_amount: decimal(18,2)
  frontage_to_amount: decimal(18,2)
  furnished: string
  id: string
  internal_area_from_amount: decimal(18,2)
  internal_area_to_amount: decimal(18,2)
  last_status_change: timestamp
  last_website_visit: timestamp
  legacy_id: string
  list_letting_price: decimal(18,2)
  list_rental_price_from: decimal(18,2)
  list_rental_price_to: decimal(18,2)
  list_selling_price: decimal(18,2)
  list_selling_price_from: decimal(18,2)
  list_selling_price_to: decimal(18,2)
  lowest_letting_price: decimal(18,2)
  lowest_selling_price: decimal(18,2)
  modified: string
  modified_by: string
  new_build: boolean
  next_follow_up_date: timestamp
  notify_matching_properties: boolean
  notify_properties_price_drop: boolean
  owner: string
  parking_from: int
  parking_to: int
  pets_allowed: boolean
  plot_area_from_amount: decimal(18,2)
  plot_area_to_amount: decimal(18,2)
  post_codes: array<string>
  private_swimming_pool: boolean
  ref: int
  registered_road: boolean
  server_room: boolean
  sorting_expression: string
  source: string
  source_description: string
  status: string
  storage_from_amount: decimal(18,2)
  storage_to_amount: decimal(18,2)
  title_deeds: boolean
  total_area_from_amount: decimal(18,2)
  total_area_to_amount: decimal(18,2)
  town_planning_zone: string
  trashed: timestamp
  virtual_contact_name: string
  water: boolean
  website_url: string
*/
WITH parsed AS (
  SELECT entity, record_key, record_modified, fetched_at, operation, is_malformed, from_json(payload, {{ payload_schema }}) AS p
  FROM STREAM(qobrix_bronze.opportunities)
)
SELECT
  record_key AS id,
  {{ payload_columns except id, modified }},
  record_modified AS modified,
  entity,
  operation,
  is_malformed
FROM parsed
