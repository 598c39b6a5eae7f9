"""One router module per concern; `graphql_odata.main` only includes them."""
