"""`mls2 integrity run`: the suites of `expectations/suites/` run with Great Expectations on an
engine (`expectations.engines`: the embedded lakehouse, or Spark on Databricks), results appended
to `mls2_system.integrity_results`, Data Docs rebuilt.
"""

import json
import logging
import shutil
import uuid
import warnings
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
from deltalake.exceptions import DeltaError

from conf.settings import Settings
from expectations.by_key import KeyScope, Restriction, previous_run, suites_digest, why_whole
from expectations.engines import DatasetError, EmbeddedEngine, Engine, EngineError, first_line
from expectations.suite_files import Suite, SuiteError, SuiteExpectation, suites
from pipelines.spark_sql import SqlError

# Great Expectations imports PySpark when it is installed (the dev extra), which warns about pandas 3.
warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)

SAMPLE = 20
"""Keys of the records an expectation found, kept per result."""


class IntegrityError(RuntimeError):
    """The suites could not run (the engine's tables unreadable, the results not kept, the docs not built)."""


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
    scope: str = "whole"
    """`whole`, or `by key`: the rows of the keys changed since the run before (`changed_keys` of them)."""
    changed_keys: int | None = None


@dataclass
class IntegrityRun:
    run_id: str
    started_at: datetime
    engine: str
    results: list[IntegrityResult] = field(default_factory=list)
    docs: Path | None = None
    base_run_id: str | None = None
    """A run by key: the run whose tables it compared with."""
    whole_datasets: dict[str, str] = field(default_factory=dict)
    """A run by key: each dataset it checked whole (`suite.dataset`), and why."""
    why_whole: str | None = None
    """A run asked to go by key that went whole: why."""

    @property
    def scope(self) -> str:
        return "whole" if self.base_run_id is None else "by key"

    @property
    def critical_failures(self) -> list[IntegrityResult]:
        return [r for r in self.results if not r.success and r.severity == "critical"]


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


def _validate(
    context: Any, engine: Engine, suite: Suite, dataset: str, frame: Any, expected: list[SuiteExpectation]
) -> list[IntegrityResult]:
    import great_expectations as gx

    results = []
    runnable = []
    # A key column is needed by runs by key: missing, it fails every run alike.
    key_columns = [keyed.column for keyed in suite.datasets[dataset].by_key]
    for item in expected:
        needed = _columns(item) + ([item.key] if item.key else []) + key_columns
        missing = [c for c in dict.fromkeys(needed) if c not in frame.columns]
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
        source = engine.add_datasource(context, "lakehouse")
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


def run_integrity(
    settings: Settings, *, build_docs: bool = True, engine: Engine | None = None, by_key: bool = False
) -> IntegrityRun:
    """Every suite once over the engine's tables as they are (the embedded lakehouse by default);
    results appended to the results table. `by_key` (the embedded engine only): check only the rows
    the tables' commits changed since the run before, where the suites allow it (`expectations.by_key`);
    the Data Docs are then left as the last whole run built them."""
    run_id = uuid.uuid4().hex
    engine = engine or EmbeddedEngine(settings, run_id)
    run = IntegrityRun(run_id, datetime.now(UTC), engine.name)
    docs = docs_index(settings).parent
    context = _gx_context(docs)
    digest = suites_digest(suites())
    try:
        with engine:
            scope = _key_scope(engine, run, digest, settings) if by_key else None
            for suite in suites():
                results, whole = _run_suite(context, engine, suite, scope)
                run.results += results
                run.whole_datasets |= whole
            versions = engine.versions if isinstance(engine, EmbeddedEngine) else {}
    except EngineError as error:
        raise IntegrityError(str(error)) from None
    try:
        engine.append_results(_result_rows(run))
        if isinstance(engine, EmbeddedEngine):
            engine.append_run(_run_row(run, digest, versions))
    except EngineError as error:
        raise IntegrityError(str(error)) from None
    if build_docs and run.scope == "whole":
        try:
            shutil.rmtree(docs, ignore_errors=True)
            context.build_data_docs()
        except OSError as error:
            raise IntegrityError(f"the Data Docs could not be built in {docs}: {error}") from None
    if build_docs and docs_index(settings).exists():
        run.docs = docs_index(settings)
    return run


def _key_scope(engine: Engine, run: IntegrityRun, digest: str, settings: Settings) -> KeyScope | None:
    """What a run by key compares with, or None (and why, in `run.why_whole`) when it must be whole."""
    if not isinstance(engine, EmbeddedEngine):
        run.why_whole = f"runs by key are the embedded engine's, not {engine.name}'s"
        return None
    try:
        previous = previous_run(engine.con, engine.name)
    except duckdb.Error as error:
        run.why_whole = f"the runs before cannot be read: {first_line(error)}"
        return None
    run.why_whole = why_whole(previous, digest, settings.mls2_integrity_whole_every_hours, run.started_at)
    if run.why_whole is not None or previous is None:
        return None
    run.base_run_id = previous.run_id
    return KeyScope(engine.con, engine.tables, engine.versions, previous)


def _restriction(scope: KeyScope, suite: Suite, dataset: str) -> Restriction | str:
    """How a run by key checks `dataset`, or why it checks it whole (also when its changed keys cannot
    be found: a broken declaration costs time, never a verdict)."""
    try:
        return scope.restriction(suite.name, suite.datasets[dataset])
    except (duckdb.Error, SqlError, DeltaError, OSError) as error:
        return f"its changed keys could not be found: {first_line(error)}"


def _run_suite(
    context: Any, engine: Engine, suite: Suite, scope: KeyScope | None
) -> tuple[list[IntegrityResult], dict[str, str]]:
    """The suite's results, and the datasets a run by key checked whole (`suite.dataset`: why)."""
    by_dataset: dict[str, list[SuiteExpectation]] = defaultdict(list)
    for item in suite.expectations:
        if engine.name in suite.datasets[item.dataset].engines:
            by_dataset[item.dataset].append(item)
    results, whole = [], {}
    for dataset, expected in by_dataset.items():
        origin = f"suite {suite.name}, dataset {dataset}"
        restriction = None if scope is None else _restriction(scope, suite, dataset)
        if isinstance(restriction, str):
            whole[f"{suite.name}.{dataset}"], restriction = restriction, None
        try:
            frame = engine.frame(suite.datasets[dataset].sql, origin=origin, restriction=restriction)
        except DatasetError as error:
            message = f"dataset {dataset} cannot be read: {error}"
            results += [
                IntegrityResult(suite.name, dataset, e.label, e.severity, False, message=message) for e in expected
            ]
            continue
        try:
            found = _validate(context, engine, suite, dataset, frame, expected)
        finally:
            engine.release(frame)
        if restriction is not None:
            found = [replace(r, scope="by key", changed_keys=restriction.keys) for r in found]
        results += found
    return results, whole


def _result_rows(run: IntegrityRun) -> list[dict]:
    return [
        {
            "run_id": run.run_id,
            "run_at": run.started_at,
            "engine": run.engine,
            "suite": r.suite,
            "dataset": r.dataset,
            "expectation": r.expectation,
            "severity": r.severity,
            "success": r.success,
            "observed_value": r.observed_value,
            "unexpected_count": r.unexpected_count,
            "unexpected_sample": list(r.unexpected_sample),
            "message": r.message,
            "scope": r.scope,
            "changed_keys": r.changed_keys,
        }
        for r in run.results
    ]


def _run_row(run: IntegrityRun, digest: str, versions: dict[str, tuple[str, int, str]]) -> dict:
    return {
        "run_id": run.run_id,
        "run_at": run.started_at,
        "engine": run.engine,
        "scope": run.scope,
        "base_run_id": run.base_run_id,
        "suites": digest,
        "tables": json.dumps(versions),
        "whole_datasets": json.dumps(run.whole_datasets),
        "why_whole": run.why_whole,
    }


def docs_index(settings: Settings) -> Path:
    """The Data Docs' index, in a `docs` folder of its own: every run replaces that folder whole."""
    return settings.integrity_docs / "index.html"
