"""Lakehouse maintenance between updates, under the pipeline lock: VACUUM on a schedule, and OPTIMIZE
(compaction of the tables written merge-on-read) when asked."""

import time
import uuid
from pathlib import Path

import duckdb

from conf.settings import DataPaths
from pipelines._engine.lakehouse import Lakehouse
from pipelines._engine.lock import UpdateLock

VACUUM_INTERVAL_SECONDS = 24 * 3600
"""How often updates are followed by a vacuum: a pass over every table opens each one and lists what
it could remove, which takes noticeable time even with nothing to remove."""


def vacuum_lakehouse(paths: DataPaths, retention_hours: int) -> dict[str, int]:
    """VACUUM every lakehouse table under the pipeline lock (no update may write meanwhile), and note
    when; returns the data files removed per table."""
    with UpdateLock(paths, f"vacuum {uuid.uuid4()}"):
        removed = Lakehouse(paths.lakehouse).vacuum(retention_hours)
    _last_vacuum(paths).touch()
    return removed


def optimize_lakehouse(paths: DataPaths) -> dict[str, int]:
    """Rewrite, in every table that holds deletion vectors, the files with deleted rows and its small
    files (when it has more than one) as files of their live rows; returns the files rewritten per
    table. Tables without deletion vectors are appended to only, and read as streams: left alone."""
    rewritten = {}
    with UpdateLock(paths, f"optimize {uuid.uuid4()}"):
        lakehouse, con = Lakehouse(paths.lakehouse), duckdb.connect()
        try:
            for name in filter(lakehouse.holds_deletion_vectors, lakehouse.names()):
                rewritten[name] = lakehouse.compact(con, name, deleted_fraction=0.0, small_files=1)
        finally:
            con.close()
    return rewritten


def vacuum_due(paths: DataPaths) -> bool:
    """Whether VACUUM_INTERVAL_SECONDS have passed since the last vacuum (or there was none)."""
    marker = _last_vacuum(paths)
    return not marker.exists() or time.time() - marker.stat().st_mtime >= VACUUM_INTERVAL_SECONDS


def _last_vacuum(paths: DataPaths) -> Path:
    return paths.state / "last_vacuum"
