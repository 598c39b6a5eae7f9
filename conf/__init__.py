"""Settings and the data that configures the product: entities, RESO mappings, the Databricks bundle."""
