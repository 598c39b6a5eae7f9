"""What the UI shows of past updates, read from the pipeline's event log (every update, whoever
started it: the UI, `mls2 pipeline run`, a schedule)."""

from dataclasses import dataclass, field
from datetime import datetime

import duckdb
import orjson

from conf.settings import DataPaths
from pipelines.ui.tables import EVENT_LOG, over_table


@dataclass(frozen=True)
class UpdateSummary:
    update_id: str
    started_at: datetime
    ended_at: datetime
    state: str
    cause: str
    full_refresh: bool
    flows: int

    @property
    def seconds(self) -> float:
        return (self.ended_at - self.started_at).total_seconds()


@dataclass
class FlowSummary:
    dataset: str
    state: str
    started_at: datetime | None = None
    ended_at: datetime | None = None
    input_rows: int | None = None
    """The rows its expectations checked (a flow without expectations reports none)."""
    output_rows: int | None = None
    deleted_rows: int | None = None
    dropped_rows: int | None = None
    expectations: list[dict] = field(default_factory=list)
    error: str | None = None

    @property
    def seconds(self) -> float | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()


def _events(paths: DataPaths) -> duckdb.DuckDBPyConnection | None:
    return over_table(paths, EVENT_LOG, "events")


SUMMARY_SQL = """
    SELECT origin.update_id, min(timestamp), max(timestamp),
      arg_max(details::JSON->>'$.update_progress.state', sequence) FILTER (WHERE event_type = 'update_progress'),
      any_value(details) FILTER (WHERE event_type = 'create_update'),
      count(DISTINCT origin.dataset_name) FILTER (WHERE event_type = 'flow_progress')
    FROM events WHERE $update IS NULL OR origin.update_id = $update
    GROUP BY 1 ORDER BY 2 DESC LIMIT $limit
"""


def updates(paths: DataPaths, limit: int = 50, update_id: str | None = None) -> list[UpdateSummary]:
    """The latest updates, newest first (or the one `update_id` names)."""
    con = _events(paths)
    if con is None:
        return []
    rows = con.execute(SUMMARY_SQL, {"update": update_id, "limit": limit}).fetchall()
    found = []
    for update_id_, started, ended, state, created, flows in rows:
        create = orjson.loads(created or "{}").get("create_update", {})
        full = bool(create.get("full_refresh")) and set(create.get("full_refresh", [])) >= set(
            create.get("refresh_selection", [])
        )
        found.append(
            UpdateSummary(update_id_, started, ended, state or "RUNNING", create.get("cause", ""), full, flows or 0)
        )
    return found


def update_summary(paths: DataPaths, update_id: str) -> UpdateSummary | None:
    found = updates(paths, limit=1, update_id=update_id)
    return found[0] if found else None


def update_flows(paths: DataPaths, update_id: str) -> list[FlowSummary]:
    """Each flow of one update in the order it ran: state, rows written and dropped, expectations."""
    con = _events(paths)
    if con is None:
        return []
    rows = con.execute(
        "SELECT origin.dataset_name, timestamp, details, error FROM events "
        "WHERE origin.update_id = ? AND event_type = 'flow_progress' ORDER BY timestamp, sequence",
        [update_id],
    ).fetchall()
    flows: dict[str, FlowSummary] = {}
    for dataset, at, details, error in rows:
        progress = orjson.loads(details).get("flow_progress", {})
        flow = flows.setdefault(dataset, FlowSummary(dataset, progress.get("status", "")))
        flow.state = progress.get("status", flow.state)
        if flow.state == "RUNNING":
            flow.started_at = at
        else:
            flow.ended_at = at
        metrics = progress.get("metrics") or {}
        if "num_output_rows" in metrics:
            flow.output_rows = metrics["num_output_rows"]
            flow.deleted_rows = metrics.get("num_deleted_rows")
        quality = progress.get("data_quality") or {}
        if quality:
            flow.dropped_rows = quality.get("dropped_records")
            flow.expectations = quality.get("expectations") or []
            if flow.expectations:
                checked = flow.expectations[0]
                flow.input_rows = int(checked.get("passed_records") or 0) + int(checked.get("failed_records") or 0)
        flow.error = error or flow.error
    return list(flows.values())


def _label(status: str, written: int | None, expectations: list[dict]) -> str:
    """A dataset's line in the graph: `COMPLETED 1,234 rows, 2 failing`."""
    failing = sum(1 for item in expectations if item.get("failed_records"))
    facts = [f"{written:,} rows" if written is not None else "", f"{failing} failing" if failing else ""]
    return " ".join([status, ", ".join(fact for fact in facts if fact)]).strip()


def flow_states(flows: list[FlowSummary]) -> dict[str, str]:
    """Each flow of one update as the graph shows it."""
    return {flow.dataset: _label(flow.state, flow.output_rows, flow.expectations) for flow in flows}


def last_flow_states(paths: DataPaths) -> dict[str, str]:
    """Each dataset as the latest update that ran its flow left it (as the graph shows it)."""
    con = _events(paths)
    if con is None:
        return {}
    rows = con.execute(
        "SELECT origin.dataset_name, arg_max(details, timestamp) FROM events "
        "WHERE event_type = 'flow_progress' GROUP BY 1"
    ).fetchall()
    states = {}
    for dataset, details in rows:
        progress = orjson.loads(details).get("flow_progress", {})
        written = (progress.get("metrics") or {}).get("num_output_rows")
        expectations = (progress.get("data_quality") or {}).get("expectations") or []
        states[dataset] = _label(progress.get("status", ""), written, expectations)
    return states
