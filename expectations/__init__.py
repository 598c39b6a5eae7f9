"""Data-quality rules as data, and the Qobrix-vs-RESO integrity suite."""
