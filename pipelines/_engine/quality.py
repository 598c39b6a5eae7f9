"""Expectations on the embedded engine: warn, drop (into quarantine) or fail, with DLT's metrics.

A row breaks an expectation when its constraint is false or NULL (it is kept only
when the constraint is true, as a filter keeps it).
"""

from dataclasses import dataclass, field

import duckdb
import pyarrow as pa

from pipelines._engine.sql_text import Translate, quote
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
    views: tuple[str, ...] = ()
    """The temporary views checking made (`kept` among them), to drop once the rows are written."""
    duplicates: int = 0
    """Rows dropped because another row holds their unique key."""


def check(con: duckdb.DuckDBPyConnection, dataset: Dataset, batch: str, translate: Translate) -> CheckedBatch:
    """Evaluate `dataset`'s expectations (rendered for DuckDB by `translate`) over relation `batch`;
    raise on a broken fail rule. A dataset with a unique key then drops the rows whose key a row
    before them holds (first by the incremental column, then by content)."""
    report = QualityReport(dataset=dataset.name)
    report.input_records = con.execute(f"SELECT count(*) FROM {batch}").fetchall()[0][0]
    checked = (
        _expect(con, dataset, batch, report, translate) if dataset.expectations else CheckedBatch(batch, None, report)
    )
    return _keep_unique(con, dataset, checked) if dataset.unique_key else checked


def _expect(
    con: duckdb.DuckDBPyConnection, dataset: Dataset, batch: str, report: QualityReport, translate: Translate
) -> CheckedBatch:
    conditions = _conditions(dataset, translate)
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
    return CheckedBatch(kept=kept, quarantine=quarantine, report=report, views=(kept,))


def _keep_unique(con: duckdb.DuckDBPyConnection, dataset: Dataset, checked: CheckedBatch) -> CheckedBatch:
    """Drop the rows of `checked.kept` whose unique key a row ranked before them holds (rows without a
    key are left to the dataset's own rules). Nothing is ranked or copied when every key is free."""
    key = quote(dataset.unique_key)
    [(repeated,)] = con.execute(f"SELECT count({key}) - count(DISTINCT {key}) FROM {checked.kept}").fetchall()
    report, rule = checked.report, dataset.unique_rule
    kept_before = report.input_records - report.dropped_records
    if not repeated:
        report.expectations.append(_passed(dataset, rule, kept_before, 0))
        return checked
    order = quote(dataset.incremental.column) if dataset.incremental else key
    claims, kept = f"{checked.kept}__claims", f"{checked.kept}__unique"
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW {claims} AS SELECT b.*, b.{key} IS NOT NULL AND row_number() OVER "
        f"(PARTITION BY b.{key} ORDER BY b.{order}, to_json(b)) > 1 AS mls2_claimed FROM {checked.kept} b"
    )
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW {kept} AS SELECT * EXCLUDE (mls2_claimed) FROM {claims} WHERE NOT mls2_claimed"
    )
    losers = con.sql(
        f"SELECT ['{rule}'] AS broken_rules, to_json(b) AS record "
        f"FROM (SELECT * EXCLUDE (mls2_claimed) FROM {claims} WHERE mls2_claimed) b"
    ).to_arrow_table()
    report.dropped_records += losers.num_rows
    report.expectations.append(_passed(dataset, rule, kept_before, losers.num_rows))
    quarantine = losers if checked.quarantine is None else pa.concat_tables([checked.quarantine, losers])
    return CheckedBatch(kept, quarantine, report, (*checked.views, claims, kept), duplicates=losers.num_rows)


def _passed(dataset: Dataset, rule: str, checked: int, failed: int) -> dict:
    return {"name": rule, "dataset": dataset.name, "passed_records": checked - failed, "failed_records": failed}


def warns_only(dataset: Dataset) -> bool:
    """Whether every expectation of `dataset` only warns (its rows can be counted once written, before the commit)."""
    return all(e.on_violation == "warn" for e in dataset.expectations)


def _conditions(dataset: Dataset, translate: Translate) -> dict[str, str]:
    """Each expectation's constraint in DuckDB, NULL counting as broken."""
    return {e.name: f"coalesce(({translate(e.constraint)}), false)" for e in dataset.expectations}
