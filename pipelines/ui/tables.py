"""The lakehouse tables the UI reads (the event log, quarantine, integrity results), each through
DuckDB over its committed files (less the rows deletion vectors delete)."""

import duckdb

from conf.settings import DataPaths
from pipelines.embedded import Lakehouse, register_delta

EVENT_LOG = "mls2_system.event_log"
QUARANTINE = "mls2_system.quarantine"
INTEGRITY_RESULTS = "mls2_system.integrity_results"


def over_table(paths: DataPaths, table: str, relation: str) -> duckdb.DuckDBPyConnection | None:
    """A DuckDB connection (in UTC) with `table` registered as `relation`, or None when the table
    does not exist yet."""
    delta = Lakehouse(paths.lakehouse).table(table)
    if delta is None:
        return None
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    register_delta(con, relation, delta)
    return con
