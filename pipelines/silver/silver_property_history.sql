/*
name: qobrix_silver.property_history
kind: auto_cdc
comment: >
  Every asking price and status a property has had (SCD type 2), from the property events. Events
  qobrix_silver.property quarantines (malformed, no id, no time, landed as another entity, an
  operation other than upsert or delete, a typed field that does not parse) are left to its quarantine.
keys: [id]
sequence_by: modified
apply_as_deletes: operation = 'delete'
except_column_list: [operation]
stored_as_scd_type: 2
track_history_column_list: [status, sale_rent, list_selling_price_amount, list_rental_price_amount]
expectations:
  - {name: id_present, constraint: id IS NOT NULL, on_violation: drop,
     violates: {row: {id: 'NULL'}}}
  - {name: modified_parses, constraint: modified IS NOT NULL, on_violation: drop,
     violates: {row: {modified: 'NULL'}}}
*/
SELECT
  id,
  status,
  sale_rent,
  list_selling_price_amount,
  list_rental_price_amount,
  modified,
  operation
FROM STREAM(qobrix_silver.property_changes)
WHERE NOT is_malformed AND id IS NOT NULL AND modified IS NOT NULL
  AND entity = 'properties' AND operation IN ('upsert', 'delete')
  AND (operation = 'delete' OR size(unparsed_fields) = 0)
