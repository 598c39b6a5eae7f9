"""`mls2 integrity run`: the suites of `expectations/suites/` run with Great Expectations over the
embedded lakehouse, results appended to `mls2_system.integrity_results`, Data Docs rebuilt.

Datasets are read with DuckDB from the lakehouse's Delta tables (Arrow datasets of the committed
files) and handed to GX as pandas DataFrames. Beside the lakehouse, `mls2_snapshot` (what the
served snapshot was published from) and `mls2_syncs` (successful syncs) are given to the SQL.
"""

import logging
import shutil
import uuid
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import DeltaError

from conf.settings import Settings
from expectations.suite_files import Suite, SuiteError, SuiteExpectation, suites
from ingestion.state import SyncState
from pipelines.snapshot.pointer import read_pointer

# Great Expectations imports PySpark when it is installed (the dev extra), which warns about pandas 3.
warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)

RESULTS_TABLE = ("mls2_system", "integrity_results")
SAMPLE = 20
"""Keys of the records an expectation found, kept per result."""


class IntegrityError(RuntimeError):
    """The suites could not run over this lakehouse (its results could not be kept, the docs not built)."""


@dataclass(frozen=True)
class IntegrityResult:
    suite: str
    dataset: str
    expectation: str
    severity: str
    success: bool
    observed_value: str | None = None
    unexpected_count: int = 0
    unexpected_sample: tuple[str, ...] = ()
    message: str | None = None


@dataclass
class IntegrityRun:
    run_id: str
    started_at: datetime
    results: list[IntegrityResult] = field(default_factory=list)
    docs: Path | None = None

    @property
    def critical_failures(self) -> list[IntegrityResult]:
        return [r for r in self.results if not r.success and r.severity == "critical"]


def register_lakehouse(con: duckdb.DuckDBPyConnection, lakehouse: Path) -> None:
    """Every Delta table of the lakehouse as `schema.table`, read from its committed files."""
    for table_dir in sorted(lakehouse.glob("*/*/_delta_log")):
        schema, table = table_dir.parent.parent.name, table_dir.parent.name
        con.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        con.register(f"{schema}__{table}", DeltaTable(str(table_dir.parent)).to_pyarrow_dataset())
        con.execute(f'CREATE OR REPLACE VIEW "{schema}"."{table}" AS SELECT * FROM "{schema}__{table}"')


NO_DATA_CHANGE = {"VACUUM START", "VACUUM END", "OPTIMIZE"}
"""Delta operations that leave a table's rows as they were."""


def _data_version(path: Path) -> int | None:
    """The table's latest version that changed its rows (a vacuum commits two versions that do not)."""
    if not (path / "_delta_log").exists():
        return None
    table = DeltaTable(str(path))
    for commit in table.history(limit=50):
        if commit.get("operation") not in NO_DATA_CHANGE:
            return int(commit["version"])
    return table.version()


def register_context(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    """`mls2_snapshot` and `mls2_syncs`, which the freshness suite reads beside the lakehouse."""
    pointer = read_pointer(settings.paths.snapshot_pointer) or {}
    published_at = datetime.fromisoformat(pointer["published_at"]) if "published_at" in pointer else None
    rows = [
        {
            "table_name": name,
            "published_version": published,
            "gold_version": _data_version(settings.paths.lakehouse.joinpath(*name.split(".", 1))),
            "published_at": published_at,
        }
        for name, published in sorted(pointer.get("versions", {}).items())
    ]
    columns = [("table_name", pa.string()), ("published_version", pa.int64()), ("gold_version", pa.int64())]
    con.register(
        "mls2_snapshot", pa.Table.from_pylist(rows, pa.schema([*columns, ("published_at", pa.timestamp("us", "UTC"))]))
    )
    state = SyncState(settings.sync_state_path)
    try:
        finished = [s for s in state.recent_syncs(1000) if s.status == "succeeded" and s.finished_at]
    finally:
        state.close()
    syncs = pa.Table.from_pylist(
        [{"sync_id": s.sync_id, "finished_at": datetime.fromisoformat(s.finished_at)} for s in finished],
        pa.schema([("sync_id", pa.string()), ("finished_at", pa.timestamp("us", "UTC"))]),
    )
    con.register("mls2_syncs", syncs)


def _gx_context(docs: Path):
    """An ephemeral GX context whose Data Docs go to `docs`: the site shows this run (the history
    is the results table), so it does not grow with every update."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    context.update_data_docs_site(
        "local_site",
        {
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        },
    )
    return context


def _expectation(suite: Suite, expected: SuiteExpectation):
    from great_expectations.compatibility.pydantic import ValidationError
    from great_expectations.exceptions import ExpectationNotFoundError
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    where = f"suite {suite.name}, expectation {expected.number} ({expected.type})"
    try:
        configuration = ExpectationConfiguration(
            type=expected.type, kwargs=expected.kwargs, severity=expected.severity, meta={"number": expected.number}
        )
        return configuration.to_domain_obj()
    except ExpectationNotFoundError:
        raise SuiteError(f"{where}: Great Expectations has no expectation {expected.type}") from None
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise SuiteError(f"{where}: {problems}") from None
    except (TypeError, ValueError) as error:
        raise SuiteError(f"{where}: {error}") from None


def _columns(expected: SuiteExpectation) -> list[str]:
    kwargs = expected.kwargs
    return [kwargs[k] for k in ("column", "column_A", "column_B") if k in kwargs] + list(kwargs.get("column_list", []))


def _validate(context, suite: Suite, dataset: str, frame, expected: list[SuiteExpectation]) -> list[IntegrityResult]:
    import great_expectations as gx

    results = []
    runnable = []
    for item in expected:
        missing = [c for c in _columns(item) + ([item.key] if item.key else []) if c not in frame.columns]
        if missing:
            results.append(
                IntegrityResult(
                    suite.name,
                    dataset,
                    item.label,
                    item.severity,
                    False,
                    message=f"dataset {dataset} has no column {', '.join(missing)}",
                )
            )
        else:
            runnable.append(item)
    if not runnable:
        return results
    by_number = {item.number: item for item in runnable}
    name = f"{suite.name}.{dataset}"
    gx_suite = context.suites.add_or_update(
        gx.ExpectationSuite(name=name, expectations=[_expectation(suite, item) for item in runnable])
    )
    try:
        source = context.data_sources.get("lakehouse")
    except KeyError:
        source = context.data_sources.add_pandas("lakehouse")
    try:
        asset = source.get_asset(name)
    except LookupError:
        asset = source.add_dataframe_asset(name)
    try:
        batch = asset.get_batch_definition("whole")
    except KeyError:
        batch = asset.add_batch_definition_whole_dataframe("whole")
    validation = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=name, data=batch, suite=gx_suite)
    )
    keys = sorted({item.key for item in runnable if item.key})
    result_format = {"result_format": "SUMMARY", "partial_unexpected_count": SAMPLE}
    if keys:
        result_format["unexpected_index_column_names"] = keys
    outcome = validation.run(batch_parameters={"dataframe": frame}, result_format=result_format)
    for item_result in outcome.results:
        item = by_number[item_result.expectation_config.meta["number"]]
        detail = item_result.result or {}
        sample = tuple(
            str(row.get(item.key)) if isinstance(row, dict) and item.key else str(row)
            for row in (detail.get("partial_unexpected_index_list") or detail.get("partial_unexpected_list") or [])
        )[:SAMPLE]
        info = item_result.exception_info or {}
        # Per metric when a metric failed; flat when the expectation could not be evaluated at all.
        errors = [v.get("exception_message") for v in info.values() if isinstance(v, dict)]
        errors += [info.get("exception_message")] if isinstance(info.get("exception_message"), str) else []
        observed = detail.get("observed_value")
        results.append(
            IntegrityResult(
                suite.name,
                dataset,
                item.label,
                item.severity,
                bool(item_result.success),
                observed_value=None if observed is None else str(observed),
                unexpected_count=int(detail.get("unexpected_count") or 0),
                unexpected_sample=sample,
                message="; ".join(e for e in errors if e) or None,
            )
        )
    return results


def run_integrity(settings: Settings, *, build_docs: bool = True) -> IntegrityRun:
    """Every suite once over the lakehouse as it is; results appended to the results table."""
    run = IntegrityRun(uuid.uuid4().hex, datetime.now(UTC))
    docs = docs_index(settings).parent
    context = _gx_context(docs)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    try:
        try:
            register_lakehouse(con, settings.paths.lakehouse)
            register_context(con, settings)
        except (DeltaError, duckdb.Error, OSError) as error:
            raise IntegrityError(f"the lakehouse at {settings.paths.lakehouse} cannot be read: {error}") from None
        for suite in suites():
            by_dataset: dict[str, list[SuiteExpectation]] = defaultdict(list)
            for item in suite.expectations:
                by_dataset[item.dataset].append(item)
            for dataset, expected in by_dataset.items():
                try:
                    frame = con.sql(suite.datasets[dataset]).df()
                except duckdb.Error as error:
                    message = f"dataset {dataset} cannot be read: {str(error).splitlines()[0]}"
                    run.results += [
                        IntegrityResult(suite.name, dataset, item.label, item.severity, False, message=message)
                        for item in expected
                    ]
                    continue
                run.results += _validate(context, suite, dataset, frame, expected)
    finally:
        con.close()
    try:
        _append_results(settings, run)
        if build_docs:
            shutil.rmtree(docs, ignore_errors=True)
            context.build_data_docs()
            run.docs = docs_index(settings)
    except (OSError, DeltaError) as error:
        raise IntegrityError(f"the results could not be kept: {error}") from None
    return run


def _append_results(settings: Settings, run: IntegrityRun) -> None:
    rows = [
        {
            "run_id": run.run_id,
            "run_at": run.started_at,
            "suite": r.suite,
            "dataset": r.dataset,
            "expectation": r.expectation,
            "severity": r.severity,
            "success": r.success,
            "observed_value": r.observed_value,
            "unexpected_count": r.unexpected_count,
            "unexpected_sample": list(r.unexpected_sample),
            "message": r.message,
        }
        for r in run.results
    ]
    schema = pa.schema(
        [
            ("run_id", pa.string()), ("run_at", pa.timestamp("us", "UTC")), ("suite", pa.string()),
            ("dataset", pa.string()), ("expectation", pa.string()), ("severity", pa.string()),
            ("success", pa.bool_()), ("observed_value", pa.string()), ("unexpected_count", pa.int64()),
            ("unexpected_sample", pa.list_(pa.string())), ("message", pa.string()),
        ]
    )  # fmt: skip
    path = settings.paths.lakehouse.joinpath(*RESULTS_TABLE)
    write_deltalake(str(path), pa.Table.from_pylist(rows, schema), mode="append", schema_mode="merge")


def docs_index(settings: Settings) -> Path:
    return settings.paths.root / "integrity" / "docs" / "index.html"
