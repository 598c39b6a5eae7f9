"""GraphQL over the same gold and the same query model as OData: schema, `where`, resolvers, GraphiQL."""
