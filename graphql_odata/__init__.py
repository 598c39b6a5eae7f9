"""The serving layer: one FastAPI app with the RESO Web API (OData) and GraphQL over gold."""
