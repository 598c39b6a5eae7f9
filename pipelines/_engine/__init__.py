"""The embedded engine: DuckDB computes, Delta Lake (delta-rs) stores."""
