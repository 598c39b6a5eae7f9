/*
name: qobrix_silver.property
kind: auto_cdc
changes_of: {entity: properties, malformed_also: [name_present, property_type_present]}
comment: >
  One row per Qobrix property, typed and cleaned; trashed and deleted properties removed. Keeps when
  its version was fetched and the landing file it came from.
sequence_by: change_sequence
except_column_list: [entity, operation, is_malformed, unparsed_fields]
expectations:
  - {name: name_present, constraint: operation = 'delete' OR name IS NOT NULL, on_violation: drop,
     violates: {entity: properties, record: {name: null}}}
  - {name: property_type_present, constraint: operation = 'delete' OR property_type IS NOT NULL, on_violation: drop,
     violates: {entity: properties, record: {property_type: null}}}
  - {name: prices_not_negative, constraint: "coalesce(list_selling_price_amount, 0) >= 0 AND coalesce(list_rental_price_amount, 0) >= 0", on_violation: drop,
     violates: {entity: properties, record: {list_selling_price_amount: -1}}}
  - {name: areas_not_negative, constraint: "coalesce(internal_area_amount, 0) >= 0 AND coalesce(plot_area_amount, 0) >= 0", on_violation: drop,
     violates: {entity: properties, record: {internal_area_amount: -5}}}
  - {name: coordinates_in_range, constraint: "latitude IS NULL OR (latitude BETWEEN -90 AND 90 AND longitude BETWEEN -180 AND 180)", on_violation: warn,
     violates: {entity: properties, record: {coordinates: '95.0,200.0'}}}
  - {name: status_known, constraint: "status IS NULL OR status IN ('pending', 'available', 'reserved', 'sold', 'rented', 'withdrawn', 'under_offer')", on_violation: warn,
     violates: {entity: properties, record: {status: exploded}}}
  - {name: typed_fields_parse, constraint: operation = 'delete' OR size(unparsed_fields) = 0, on_violation: drop,
     violates: {entity: properties, record: {bedrooms: many}}}
*/
SELECT * FROM STREAM(qobrix_silver.property_changes)
