"""Where the API reads gold: the published embedded snapshot (default) or a Databricks SQL warehouse."""
