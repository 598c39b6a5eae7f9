"""What the data-quality pages show: each dataset's expectations across updates (the event log), the
rows quarantine holds with the rules they broke and the landing page they came from, the integrity
suite's latest results, and how fresh each served table and the snapshot are."""

import re
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb
import orjson

from conf.settings import DataPaths
from pipelines.embedded import Lakehouse, last_data_change
from pipelines.snapshot import read_pointer
from pipelines.ui.tables import EVENT_LOG, INTEGRITY_RESULTS, QUARANTINE, over_table

LANDING_PAGE = re.compile(
    r"(?P<entity>[^/]+)/(?P<day>\d{4}-\d{2}-\d{2})/(?P<sync>[^/]+)/page-(?P<page>\d+)\.jsonl(?:\.gz)?"
)


def _over(paths: DataPaths, table: str) -> duckdb.DuckDBPyConnection | None:
    return over_table(paths, table, "t")


@dataclass(frozen=True)
class ExpectationPoint:
    update_id: str
    at: datetime
    expectation: str
    passed: int
    failed: int


def expectation_history(paths: DataPaths, dataset: str, updates: int = 20) -> list[ExpectationPoint]:
    """Passed and failed rows of each of the dataset's expectations in its last `updates` completed flows."""
    con = _over(paths, EVENT_LOG)
    if con is None:
        return []
    rows = con.execute(
        "SELECT origin.update_id, timestamp, details FROM t WHERE event_type = 'flow_progress' "
        "AND origin.dataset_name = ? AND details::JSON->>'$.flow_progress.status' = 'COMPLETED' "
        "ORDER BY timestamp DESC LIMIT ?",
        [dataset, updates],
    ).fetchall()
    points = []
    for update_id, at, details in reversed(rows):
        quality = orjson.loads(details)["flow_progress"].get("data_quality") or {}
        for item in quality.get("expectations") or []:
            passed, failed = int(item.get("passed_records") or 0), int(item.get("failed_records") or 0)
            points.append(ExpectationPoint(update_id, at, item["name"], passed, failed))
    return points


def expectation_chart(points: list[ExpectationPoint]) -> dict:
    """The points as a chart's data: one label per update (oldest first), and per expectation its
    passed and failed rows in each."""
    updates = sorted({(point.at, point.update_id) for point in points})
    index = {update_id: position for position, (_, update_id) in enumerate(updates)}
    series: dict[str, dict[str, list[int]]] = {}
    for point in points:
        rows = series.setdefault(point.expectation, {"passed": [0] * len(updates), "failed": [0] * len(updates)})
        rows["passed"][index[point.update_id]] = point.passed
        rows["failed"][index[point.update_id]] = point.failed
    labels = [f"{at:%m-%d %H:%M} {update_id[:8]}" for at, update_id in updates]
    return {"labels": labels, "series": series}


@dataclass(frozen=True)
class QuarantinedRow:
    dataset: str
    broken_rules: list[str]
    record_key: str | None
    update_id: str | None
    quarantined_at: datetime
    sync_id: str | None
    page: int | None
    source_file: str | None
    record: str


def quarantine_counts(paths: DataPaths) -> list[tuple[str, str, int]]:
    """(dataset, rule, rows) for every rule quarantine holds rows for, most rows first."""
    con = _over(paths, QUARANTINE)
    if con is None:
        return []
    return con.execute(
        "SELECT dataset, rule, count(*) FROM (SELECT dataset, unnest(broken_rules) AS rule FROM t) "
        "GROUP BY ALL ORDER BY 3 DESC, 1, 2"
    ).fetchall()


def quarantined_rows(
    paths: DataPaths, *, dataset: str | None = None, rule: str | None = None, limit: int = 50, offset: int = 0
) -> tuple[list[QuarantinedRow], int]:
    """A page of quarantined rows (newest first) and how many match."""
    con = _over(paths, QUARANTINE)
    if con is None:
        return [], 0
    where = "($dataset IS NULL OR dataset = $dataset) AND ($rule IS NULL OR list_contains(broken_rules, $rule))"
    found = {"dataset": dataset, "rule": rule}
    [(total,)] = con.execute(f"SELECT count(*) FROM t WHERE {where}", found).fetchall()
    rows = con.execute(
        "SELECT dataset, broken_rules, update_id, quarantined_at, record FROM t "
        f"WHERE {where} ORDER BY quarantined_at DESC, record LIMIT $limit OFFSET $offset",
        {**found, "limit": limit, "offset": offset},
    ).fetchall()
    return [_quarantined(*row) for row in rows], total


def _quarantined(dataset: str, rules: list[str], update_id: str | None, at: datetime, record: str) -> QuarantinedRow:
    try:
        fields = orjson.loads(record)
    except orjson.JSONDecodeError:
        fields = {}
    fields = fields if isinstance(fields, dict) else {}
    source = fields.get("source_file")
    landed = LANDING_PAGE.search(source or "")
    keys = [fields.get("id"), fields.get("record_key"), *(v for k, v in fields.items() if k.endswith("Key"))]
    key = next((value for value in keys if value is not None), None)
    return QuarantinedRow(
        dataset,
        list(rules),
        None if key is None else str(key),
        update_id,
        at,
        landed["sync"] if landed else None,
        int(landed["page"]) if landed else None,
        source,
        record,
    )


def integrity_latest(paths: DataPaths) -> list[dict]:
    """The integrity suite's latest run, one row per expectation (failures first), with what it checked:
    `whole`, or `by key` (the rows of `changed_keys` keys changed since the run before)."""
    con = _over(paths, INTEGRITY_RESULTS)
    if con is None:
        return []
    kept = {name for (name, *_) in con.execute("DESCRIBE t").fetchall()}
    # Results kept before runs by key have no scope: they were whole.
    scope = (
        "coalesce(scope, 'whole') AS scope, changed_keys"
        if "scope" in kept
        else "'whole' AS scope, NULL AS changed_keys"
    )
    found = con.execute(
        "SELECT run_at, suite, dataset, expectation, severity, success, unexpected_count, unexpected_sample, message, "
        f"{scope} FROM t WHERE run_id = (SELECT arg_max(run_id, run_at) FROM t) "
        "ORDER BY success, severity, suite, dataset"
    )
    columns = [column[0] for column in found.description]
    return [dict(zip(columns, row, strict=True)) for row in found.fetchall()]


@dataclass(frozen=True)
class Freshness:
    table: str
    changed_at: datetime | None
    served_version: int | None
    latest_version: int | None

    @property
    def stale(self) -> bool:
        """Whether gold's rows changed after the version served."""
        return self.latest_version is not None and (
            self.served_version is None or self.latest_version > self.served_version
        )

    @property
    def hours(self) -> float | None:
        return None if self.changed_at is None else (datetime.now(UTC) - self.changed_at).total_seconds() / 3600


def freshness(paths: DataPaths, served: list[str]) -> tuple[list[Freshness], datetime | None]:
    """Each served table: when its rows last changed, the version served and the latest; and when the
    snapshot was published."""
    pointer = read_pointer(paths.snapshot_pointer) or {}
    lakehouse = Lakehouse(paths.lakehouse)
    tables = []
    for name in served:
        delta = lakehouse.table(name)
        changed = latest = None
        if delta is not None:
            commit = last_data_change(delta)
            if commit is not None:
                changed = datetime.fromtimestamp(commit["timestamp"] / 1000, UTC)
                latest = int(commit["version"])
        tables.append(Freshness(name, changed, pointer.get("versions", {}).get(name), latest))
    published = pointer.get("published_at")
    return tables, datetime.fromisoformat(published) if published else None
