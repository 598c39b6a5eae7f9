/*
name: qobrix_silver.opportunity
kind: auto_cdc
comment: One row per Qobrix opportunity (a lead or enquiry), typed.
keys: [id]
sequence_by: modified
apply_as_deletes: operation = 'delete'
except_column_list: [operation, is_malformed]
stored_as_scd_type: 1
expectations:
  - {name: payload_is_json_record, constraint: NOT is_malformed, on_violation: drop}
  - {name: id_present, constraint: id IS NOT NULL, on_violation: drop}
  - {name: modified_parses, constraint: modified IS NOT NULL, on_violation: drop}
  - {name: contact_present, constraint: operation = 'delete' OR contact_name IS NOT NULL, on_violation: warn}
*/
WITH parsed AS (
  SELECT record_key, record_modified, fetched_at, operation, is_malformed, from_json(payload, 'struct<agent:string,air_condition:string,area_of_interest:string,bathrooms_from:string,bathrooms_to:string,bedrooms_from:string,bedrooms_to:string,business_transfer_commercial_activity:array<string>,business_transfer_or_sale:string,buy_rent:string,campaign_id:string,closed_lost_details:string,closed_lost_reason_id:string,common_swimming_pool:string,concierge_reception:string,construction_stage:string,contact_name:string,covered_area_from_amount:string,covered_area_to_amount:string,covered_parking:string,created:string,created_by:string,custom_attended_webinar:string,custom_do_not_contact:string,custom_enquiry_low_budget:string,custom_enquiry_stage_type:string,custom_general_interest_type:string,custom_interest_type:string,custom_internal_area_amount:string,custom_mql:string,custom_project:string,custom_property:string,custom_sql:string,custom_webinars:array<string>,description:string,direct_source:string,electricity:string,elevator:string,enclosed_office_room:string,enquiry_date:string,enquiry_subtypes:array<string>,enquiry_type:string,frontage_from_amount:string,frontage_to_amount:string,furnished:string,id:string,internal_area_from_amount:string,internal_area_to_amount:string,last_status_change:string,last_website_visit:string,legacy_id:string,list_letting_price:string,list_rental_price_from:string,list_rental_price_to:string,list_selling_price:string,list_selling_price_from:string,list_selling_price_to:string,lowest_letting_price:string,lowest_selling_price:string,modified:string,modified_by:string,new_build:string,next_follow_up_date:string,notify_matching_properties:string,notify_properties_price_drop:string,owner:string,parking_from:string,parking_to:string,pets_allowed:string,plot_area_from_amount:string,plot_area_to_amount:string,post_codes:array<string>,private_swimming_pool:string,ref:string,registered_road:string,server_room:string,sorting_expression:string,source:string,source_description:string,status:string,storage_from_amount:string,storage_to_amount:string,title_deeds:string,total_area_from_amount:string,total_area_to_amount:string,town_planning_zone:string,trashed:string,virtual_contact_name:string,water:string,website_url:string>') AS p
  FROM STREAM(qobrix_bronze.opportunities)
)
SELECT
  record_key AS id,
  p.agent AS agent,
  try_cast(p.air_condition AS BOOLEAN) AS air_condition,
  p.area_of_interest AS area_of_interest,
  try_cast(p.bathrooms_from AS INT) AS bathrooms_from,
  try_cast(p.bathrooms_to AS INT) AS bathrooms_to,
  try_cast(p.bedrooms_from AS INT) AS bedrooms_from,
  try_cast(p.bedrooms_to AS INT) AS bedrooms_to,
  coalesce(p.business_transfer_commercial_activity, array()) AS business_transfer_commercial_activity,
  try_cast(p.business_transfer_or_sale AS BOOLEAN) AS business_transfer_or_sale,
  p.buy_rent AS buy_rent,
  p.campaign_id AS campaign_id,
  p.closed_lost_details AS closed_lost_details,
  p.closed_lost_reason_id AS closed_lost_reason_id,
  try_cast(p.common_swimming_pool AS BOOLEAN) AS common_swimming_pool,
  try_cast(p.concierge_reception AS BOOLEAN) AS concierge_reception,
  p.construction_stage AS construction_stage,
  p.contact_name AS contact_name,
  try_cast(p.covered_area_from_amount AS DECIMAL(18, 2)) AS covered_area_from_amount,
  try_cast(p.covered_area_to_amount AS DECIMAL(18, 2)) AS covered_area_to_amount,
  try_cast(p.covered_parking AS INT) AS covered_parking,
  try_to_timestamp(p.created) AS created,
  p.created_by AS created_by,
  try_cast(p.custom_attended_webinar AS BOOLEAN) AS custom_attended_webinar,
  try_cast(p.custom_do_not_contact AS BOOLEAN) AS custom_do_not_contact,
  try_cast(p.custom_enquiry_low_budget AS BOOLEAN) AS custom_enquiry_low_budget,
  p.custom_enquiry_stage_type AS custom_enquiry_stage_type,
  p.custom_general_interest_type AS custom_general_interest_type,
  p.custom_interest_type AS custom_interest_type,
  try_cast(p.custom_internal_area_amount AS DECIMAL(18, 2)) AS custom_internal_area_amount,
  try_cast(p.custom_mql AS BOOLEAN) AS custom_mql,
  p.custom_project AS custom_project,
  p.custom_property AS custom_property,
  try_cast(p.custom_sql AS BOOLEAN) AS custom_sql,
  coalesce(p.custom_webinars, array()) AS custom_webinars,
  p.description AS description,
  p.direct_source AS direct_source,
  try_cast(p.electricity AS BOOLEAN) AS electricity,
  try_cast(p.elevator AS BOOLEAN) AS elevator,
  try_cast(p.enclosed_office_room AS BOOLEAN) AS enclosed_office_room,
  try_cast(p.enquiry_date AS DATE) AS enquiry_date,
  coalesce(p.enquiry_subtypes, array()) AS enquiry_subtypes,
  p.enquiry_type AS enquiry_type,
  try_cast(p.frontage_from_amount AS DECIMAL(18, 2)) AS frontage_from_amount,
  try_cast(p.frontage_to_amount AS DECIMAL(18, 2)) AS frontage_to_amount,
  p.furnished AS furnished,
  try_cast(p.internal_area_from_amount AS DECIMAL(18, 2)) AS internal_area_from_amount,
  try_cast(p.internal_area_to_amount AS DECIMAL(18, 2)) AS internal_area_to_amount,
  try_to_timestamp(p.last_status_change) AS last_status_change,
  try_to_timestamp(p.last_website_visit) AS last_website_visit,
  p.legacy_id AS legacy_id,
  try_cast(p.list_letting_price AS DECIMAL(18, 2)) AS list_letting_price,
  try_cast(p.list_rental_price_from AS DECIMAL(18, 2)) AS list_rental_price_from,
  try_cast(p.list_rental_price_to AS DECIMAL(18, 2)) AS list_rental_price_to,
  try_cast(p.list_selling_price AS DECIMAL(18, 2)) AS list_selling_price,
  try_cast(p.list_selling_price_from AS DECIMAL(18, 2)) AS list_selling_price_from,
  try_cast(p.list_selling_price_to AS DECIMAL(18, 2)) AS list_selling_price_to,
  try_cast(p.lowest_letting_price AS DECIMAL(18, 2)) AS lowest_letting_price,
  try_cast(p.lowest_selling_price AS DECIMAL(18, 2)) AS lowest_selling_price,
  p.modified_by AS modified_by,
  try_cast(p.new_build AS BOOLEAN) AS new_build,
  try_to_timestamp(p.next_follow_up_date) AS next_follow_up_date,
  try_cast(p.notify_matching_properties AS BOOLEAN) AS notify_matching_properties,
  try_cast(p.notify_properties_price_drop AS BOOLEAN) AS notify_properties_price_drop,
  p.owner AS owner,
  try_cast(p.parking_from AS INT) AS parking_from,
  try_cast(p.parking_to AS INT) AS parking_to,
  try_cast(p.pets_allowed AS BOOLEAN) AS pets_allowed,
  try_cast(p.plot_area_from_amount AS DECIMAL(18, 2)) AS plot_area_from_amount,
  try_cast(p.plot_area_to_amount AS DECIMAL(18, 2)) AS plot_area_to_amount,
  coalesce(p.post_codes, array()) AS post_codes,
  try_cast(p.private_swimming_pool AS BOOLEAN) AS private_swimming_pool,
  try_cast(p.ref AS INT) AS ref,
  try_cast(p.registered_road AS BOOLEAN) AS registered_road,
  try_cast(p.server_room AS BOOLEAN) AS server_room,
  p.sorting_expression AS sorting_expression,
  p.source AS source,
  p.source_description AS source_description,
  p.status AS status,
  try_cast(p.storage_from_amount AS DECIMAL(18, 2)) AS storage_from_amount,
  try_cast(p.storage_to_amount AS DECIMAL(18, 2)) AS storage_to_amount,
  try_cast(p.title_deeds AS BOOLEAN) AS title_deeds,
  try_cast(p.total_area_from_amount AS DECIMAL(18, 2)) AS total_area_from_amount,
  try_cast(p.total_area_to_amount AS DECIMAL(18, 2)) AS total_area_to_amount,
  p.town_planning_zone AS town_planning_zone,
  try_to_timestamp(p.trashed) AS trashed,
  p.virtual_contact_name AS virtual_contact_name,
  try_cast(p.water AS BOOLEAN) AS water,
  p.website_url AS website_url,
  record_modified AS modified,
  operation,
  is_malformed
FROM parsed
