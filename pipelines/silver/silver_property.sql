/*
name: qobrix_silver.property
kind: auto_cdc
comment: One row per Qobrix property, typed and cleaned; deleted and trashed properties removed.
keys: [id]
sequence_by: modified
apply_as_deletes: operation = 'delete'
except_column_list: [operation, is_malformed, source_file]
stored_as_scd_type: 1
expectations:
  - {name: payload_is_json_record, constraint: NOT is_malformed, on_violation: drop}
  - {name: id_present, constraint: id IS NOT NULL, on_violation: drop}
  - {name: modified_parses, constraint: modified IS NOT NULL, on_violation: drop}
  - {name: list_price_not_negative, constraint: list_selling_price_amount IS NULL OR list_selling_price_amount >= 0, on_violation: drop}
*/
SELECT
  record_key AS id,
  TRY_CAST(get_json_object(payload, '$.ref') AS INT) AS ref,
  get_json_object(payload, '$.name') AS name,
  get_json_object(payload, '$.status') AS status,
  get_json_object(payload, '$.sale_rent') AS sale_rent,
  get_json_object(payload, '$.property_type') AS property_type,
  TRY_CAST(get_json_object(payload, '$.list_selling_price_amount') AS DECIMAL(14, 2)) AS list_selling_price_amount,
  record_modified AS modified,
  is_malformed,
  operation,
  source_file
FROM STREAM(qobrix_bronze.properties)
