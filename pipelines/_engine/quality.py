"""Expectations on the embedded engine: warn, drop (into quarantine) or fail, with DLT's metrics.

A row breaks an expectation when its constraint is false or NULL (it is kept only
when the constraint is true, as a filter keeps it).
"""

from dataclasses import dataclass, field

import duckdb
import pyarrow as pa

from pipelines._engine.sql import spark_to_duckdb_expression
from pipelines.declaration import Dataset


class ExpectationFailed(RuntimeError):
    """An `expect_or_fail` rule was broken: the update stops, naming the rule and a sample row."""

    def __init__(self, dataset: str, rule: str, constraint: str, failed: int, sample: str) -> None:
        super().__init__(
            f"{dataset}: expectation {rule!r} ({constraint}) failed on {failed} row(s); "
            f"update stopped. Sample row: {sample}"
        )


@dataclass
class QualityReport:
    dataset: str
    input_records: int = 0
    dropped_records: int = 0
    expectations: list[dict] = field(default_factory=list)

    def count_failures(self, dataset: Dataset, failures: list[int]) -> None:
        """Record each expectation's passed and failed rows, once input_records is known."""
        for expectation, failed in zip(dataset.expectations, failures, strict=True):
            self.expectations.append(
                {
                    "name": expectation.name,
                    "dataset": dataset.name,
                    "passed_records": self.input_records - failed,
                    "failed_records": failed,
                }
            )

    def as_data_quality(self) -> dict:
        """The `details.flow_progress.data_quality` object of the Databricks event log."""
        return {"dropped_records": self.dropped_records, "expectations": self.expectations}


@dataclass
class CheckedBatch:
    kept: str
    """DuckDB relation with the rows that passed every drop rule (original columns only)."""
    quarantine: pa.Table | None
    report: QualityReport


def check(con: duckdb.DuckDBPyConnection, dataset: Dataset, batch: str) -> CheckedBatch:
    """Evaluate `dataset`'s expectations over relation `batch`; raise on a broken fail rule."""
    report = QualityReport(dataset=dataset.name)
    report.input_records = con.execute(f"SELECT count(*) FROM {batch}").fetchall()[0][0]
    if not dataset.expectations:
        return CheckedBatch(kept=batch, quarantine=None, report=report)

    conditions = _conditions(dataset)
    counts = con.execute(
        "SELECT "
        + ", ".join(f"coalesce(count_if(NOT {condition}), 0)" for condition in conditions.values())
        + f" FROM {batch}"
    ).fetchall()[0]
    report.count_failures(dataset, counts)
    for expectation, failed in zip(dataset.expectations, counts, strict=True):
        if expectation.on_violation == "fail" and failed:
            sample = con.execute(
                f"SELECT to_json(b) FROM {batch} b WHERE NOT {conditions[expectation.name]} LIMIT 1"
            ).fetchall()[0][0]
            raise ExpectationFailed(dataset.name, expectation.name, expectation.constraint, failed, sample)

    broken = ", ".join(f"CASE WHEN NOT {condition} THEN '{name}' END" for name, condition in conditions.items())
    drop_rules = [e.name for e in dataset.expectations if e.on_violation == "drop"]
    dropped_when = " OR ".join(f"NOT {conditions[name]}" for name in drop_rules) or "false"
    # No copy of the batch: kept rows are a filtered view; only dropped rows are serialized.
    quarantine = None
    if any(failed for e, failed in zip(dataset.expectations, counts, strict=True) if e.on_violation == "drop"):
        quarantine = con.sql(
            f"SELECT list_filter([{broken}], lambda rule: rule IS NOT NULL) AS broken_rules, to_json(b) AS record "
            f"FROM {batch} b WHERE {dropped_when}"
        ).to_arrow_table()
        report.dropped_records = quarantine.num_rows
    kept = f"{batch}__kept"
    con.execute(f"CREATE OR REPLACE TEMP VIEW {kept} AS SELECT * FROM {batch} b WHERE NOT ({dropped_when})")
    return CheckedBatch(kept=kept, quarantine=quarantine, report=report)


def warns_only(dataset: Dataset) -> bool:
    """Whether every expectation of `dataset` only warns (its rows can be counted once written, before the commit)."""
    return all(e.on_violation == "warn" for e in dataset.expectations)


def _conditions(dataset: Dataset) -> dict[str, str]:
    """Each expectation's constraint in DuckDB, NULL counting as broken."""
    return {e.name: f"coalesce(({spark_to_duckdb_expression(e.constraint)}), false)" for e in dataset.expectations}
