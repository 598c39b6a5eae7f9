"""The embedded backend: the DuckDB snapshot the pipeline published, re-opened when a new one lands."""

import threading
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import orjson


class BackendUnavailable(RuntimeError):
    """Nothing to serve yet, or the backend cannot be reached."""


class SnapshotBackend:
    """Serves queries from the snapshot named by `CURRENT.json`, swapping to a new one between queries.

    Each query runs on its own cursor of a read-only connection, so requests run in parallel;
    a query in flight keeps the old snapshot's connection alive until it finishes.
    """

    dialect = "duckdb"

    def __init__(self, pointer: Path) -> None:
        self.pointer_path = Path(pointer)
        self.snapshots = self.pointer_path.parent
        self._lock = threading.Lock()
        self._stamp: int | None = None
        self._connection: duckdb.DuckDBPyConnection | None = None
        self.pointer: dict | None = None

    def _current(self) -> duckdb.DuckDBPyConnection:
        try:
            stamp = self.pointer_path.stat().st_mtime_ns
        except FileNotFoundError:
            raise BackendUnavailable(
                f"no published snapshot in {self.snapshots}; run `mls2 pipeline run` first"
            ) from None
        with self._lock:
            if stamp != self._stamp or self._connection is None:
                pointer = orjson.loads(self.pointer_path.read_bytes())
                self._connection = duckdb.connect(str(self.snapshots / pointer["file"]), read_only=True)
                self._stamp, self.pointer = stamp, pointer
            return self._connection

    def query(self, sql: str, parameters: dict | None = None) -> tuple[list[str], list[tuple]]:
        cursor = self._current().cursor()
        try:
            cursor.execute(sql, parameters or {})
            columns = [column[0] for column in cursor.description]
            return columns, cursor.fetchall()
        finally:
            cursor.close()

    def tables(self) -> set[str]:
        _, rows = self.query("SELECT table_name FROM information_schema.tables")
        return {row[0] for row in rows}

    def health(self) -> dict:
        self._current()
        published = datetime.fromisoformat(self.pointer["published_at"])
        return {
            "backend": "snapshot",
            "snapshot": self.pointer["file"],
            "update_id": self.pointer["update_id"],
            "published_at": self.pointer["published_at"],
            "age_seconds": round((datetime.now(UTC) - published).total_seconds(), 1),
        }
