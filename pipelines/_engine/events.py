"""The pipeline event log, a Delta table in the shape of the Databricks pipeline event log.

Columns: id, sequence, origin (pipeline/update/flow/dataset), timestamp, message,
level, maturity_level, error, details (a JSON string, as on Databricks), event_type.
"""

import uuid
from datetime import UTC, datetime

import duckdb
import orjson
import pyarrow as pa

from pipelines._engine.arrow import rows_table
from pipelines._engine.errors import PipelineError
from pipelines._engine.lakehouse import Lakehouse, register_delta

EVENT_LOG = "mls2_system.event_log"
PIPELINE_NAME = "mls2"
MAINTENANCE_ROW_BASED = "MAINTENANCE_TYPE_ROW_BASED"
MAINTENANCE_COMPLETE_RECOMPUTE = "MAINTENANCE_TYPE_COMPLETE_RECOMPUTE"

ORIGIN = pa.struct(
    [
        ("pipeline_name", pa.string()),
        ("update_id", pa.string()),
        ("flow_name", pa.string()),
        ("dataset_name", pa.string()),
    ]
)
SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("sequence", pa.int64()),
        ("origin", ORIGIN),
        ("timestamp", pa.timestamp("us", tz="UTC")),
        ("message", pa.string()),
        ("level", pa.string()),
        ("maturity_level", pa.string()),
        ("error", pa.string()),
        ("details", pa.string()),
        ("event_type", pa.string()),
    ]
)


class EventLog:
    """Collects one update's events; `flush` appends them to the Delta event log in one commit."""

    def __init__(self, lakehouse: Lakehouse, update_id: str) -> None:
        self.lakehouse = lakehouse
        self.update_id = update_id
        self._rows: list[dict] = []

    def emit(
        self,
        event_type: str,
        message: str,
        details: dict,
        *,
        level: str = "INFO",
        flow: str | None = None,
        error: str | None = None,
    ) -> None:
        self._rows.append(
            {
                "id": str(uuid.uuid4()),
                "sequence": len(self._rows),
                "origin": {
                    "pipeline_name": PIPELINE_NAME,
                    "update_id": self.update_id,
                    "flow_name": flow,
                    "dataset_name": flow,
                },
                "timestamp": datetime.now(UTC),
                "message": message,
                "level": level,
                "maturity_level": "STABLE",
                "error": error,
                "details": orjson.dumps(details).decode(),
                "event_type": event_type,
            }
        )

    def update_progress(self, state: str, *, error: str | None = None) -> None:
        self.emit(
            "update_progress",
            f"Update {self.update_id[:8]} is {state}.",
            {"update_progress": {"state": state}},
            level="ERROR" if state == "FAILED" else "INFO",
            error=error,
        )

    def flow_progress(
        self,
        flow: str,
        status: str,
        *,
        metrics: dict | None = None,
        data_quality: dict | None = None,
        error: str | None = None,
    ) -> None:
        progress: dict = {"status": status}
        if metrics is not None:
            progress["metrics"] = metrics
        if data_quality is not None:
            progress["data_quality"] = data_quality
        self.emit(
            "flow_progress",
            f"Flow '{flow}' is {status}.",
            {"flow_progress": progress},
            level="ERROR" if status == "FAILED" else "INFO",
            flow=flow,
            error=error,
        )

    def planning_information(
        self,
        flow: str,
        technique: str,
        reason: str | None = None,
        *,
        write: dict | None = None,
        inputs: dict[str, str] | None = None,
    ) -> None:
        """How a materialized view (or an AUTO CDC target) is refreshed this update, as Databricks reports
        it: row-based maintenance (only the keys that changed) or a complete recompute, and why not
        row-based; with `write`, how its table is written (merge-on-read, or anew) and how many rows;
        with `inputs`, how a refresh by key read each input (by key, through another's column, whole)."""
        techniques = [
            {
                "maintenance_type": kind,
                "is_chosen": kind == technique,
                "is_applicable": kind == MAINTENANCE_COMPLETE_RECOMPUTE or reason is None,
                **(
                    {"incrementalization_issues": [{"reason": reason}]}
                    if kind == MAINTENANCE_ROW_BASED and reason
                    else {}
                ),
            }
            for kind in (MAINTENANCE_ROW_BASED, MAINTENANCE_COMPLETE_RECOMPUTE)
        ]
        self.emit(
            "planning_information",
            f"Flow '{flow}' has been planned to be executed as {technique}.",
            {
                "planning_information": {
                    "technique_information": techniques,
                    **({"write": write} if write else {}),
                    **({"inputs": inputs} if inputs else {}),
                }
            },
            flow=flow,
        )

    def flush(self) -> None:
        if self._rows:
            self.lakehouse.append(EVENT_LOG, rows_table(self._rows, SCHEMA))
            self._rows.clear()


def read_events(
    lakehouse_root, *, update: str | None = None, event_type: str | None = None, limit: int = 200
) -> list[dict]:
    """Events of one update (the latest by default), oldest first, as dicts."""
    table = Lakehouse(lakehouse_root).table(EVENT_LOG)
    if table is None:
        raise PipelineError("no pipeline update has run yet (the event log is empty)")
    con = duckdb.connect()
    register_delta(con, "events", table)
    if update is None:
        latest = con.execute("SELECT origin.update_id FROM events ORDER BY timestamp DESC LIMIT 1").fetchall()
        update = latest[0][0]
    query = (
        "SELECT origin.update_id AS update_id, origin.dataset_name AS dataset, timestamp, event_type, details "
        "FROM events WHERE origin.update_id = $update AND ($type IS NULL OR event_type = $type) "
        "ORDER BY timestamp, sequence LIMIT $limit"
    )
    found = con.execute(query, {"update": update, "type": event_type, "limit": limit})
    columns = [column[0] for column in found.description]
    rows = [dict(zip(columns, row, strict=True)) for row in found.fetchall()]
    if not rows:
        raise PipelineError(f"no events for update {update}")
    return rows
