"""`mls2 integrity run | docs`: the integrity suites over the embedded lakehouse, or over the
pipeline's tables on Spark (the Databricks job's integrity task)."""

from enum import StrEnum
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from conf.settings import Settings, SettingsError, load_settings

console = Console(stderr=True)
integrity_app = typer.Typer(
    help="The integrity suite (Great Expectations): RESO conformance, reconciliation with Qobrix, freshness.",
    no_args_is_help=True,
)


def print_run(result) -> None:
    since = f" by key, since run {result.base_run_id}" if result.base_run_id else ""
    whole = f" whole: {result.why_whole}" if result.why_whole else ""
    table = Table(title=f"Integrity run {result.run_id}{since}{whole}")
    for column in ("suite", "dataset", "expectation", "severity", "checked", "result", "found"):
        table.add_column(column)
    for item in result.results:
        verdict = "[green]passed[/green]" if item.success else "[red]failed[/red]"
        found = item.message or ", ".join(item.unexpected_sample[:3]) + (
            f" ({item.unexpected_count})" if item.unexpected_count else ""
        )
        checked = "whole" if item.scope == "whole" else f"{item.changed_keys:,} changed keys"
        table.add_row(item.suite, item.dataset, item.expectation, item.severity, checked, verdict, found)
    console.print(table)
    failed = result.critical_failures
    docs = f"Data Docs (the last whole run): {result.docs}" if result.docs else "no Data Docs yet"
    console.print(f"{len(failed)} critical failures of {len(result.results)} expectations. {docs}")


def integrity_after_update(settings: Settings) -> bool:
    """The suite after each `mls2 pipeline run` (unless MLS2_INTEGRITY_AFTER_UPDATE is false): whether
    no critical expectation failed."""
    if not settings.mls2_integrity_after_update:
        return True
    # Imported only when the suites run: an update without them imports neither GX nor sqlglot.
    from expectations.integrity import IntegrityError, run_integrity
    from expectations.suite_files import SuiteError

    try:
        with console.status("running the integrity suites"):
            result = run_integrity(settings, by_key=True)
    except (SuiteError, IntegrityError) as error:
        console.print(f"[red]the integrity suites could not run:[/red] {error}")
        return False
    print_run(result)
    return not result.critical_failures


class EngineChoice(StrEnum):
    embedded = "embedded"
    spark = "spark"


@integrity_app.command("run")
def run(
    engine: Annotated[
        EngineChoice,
        typer.Option(
            help="embedded: the lakehouse under MLS2_DATA_DIR. spark: the tables of the Lakeflow pipeline, "
            "through the active Spark session (a Databricks job task's)."
        ),
    ] = EngineChoice.embedded,
    catalog: Annotated[
        str | None, typer.Option(help="With --engine spark: the Unity Catalog catalog the pipeline publishes to.")
    ] = None,
    by_key: Annotated[
        bool,
        typer.Option(
            "--by-key",
            help="Check only the records the tables changed since the run before, where the suites allow it "
            "(as after an update; the embedded engine only). Whole when there is no run before, the suites "
            "changed, or the last whole run is MLS2_INTEGRITY_WHOLE_EVERY_HOURS old.",
        ),
    ] = False,
) -> None:
    """Run every suite of expectations/suites, append the results to mls2_system.integrity_results
    and rebuild the Data Docs (a run by key leaves them as the last whole run built them). Exit code
    1 when a critical expectation fails, 2 when the suites, the settings or the tables cannot be used."""
    if catalog and engine is not EngineChoice.spark:
        console.print("[red]--catalog needs --engine spark[/red]")
        raise typer.Exit(2)
    if by_key and engine is EngineChoice.spark:
        console.print("[red]--by-key is the embedded engine's: Spark checks every dataset whole[/red]")
        raise typer.Exit(2)
    # Great Expectations (and Spark) load here, not with every other `mls2` command.
    from expectations.engines import SparkEngine
    from expectations.integrity import IntegrityError, run_integrity
    from expectations.suite_files import SuiteError

    try:
        settings = load_settings()
        chosen = SparkEngine(settings, _spark_session(), catalog) if engine is EngineChoice.spark else None
        with console.status("running the integrity suites"):
            result = run_integrity(settings, engine=chosen, by_key=by_key)
    except (SettingsError, SuiteError, IntegrityError) as error:
        console.print(f"[red]cannot run the integrity suites:[/red] {error}")
        raise typer.Exit(2) from None
    print_run(result)
    raise typer.Exit(1 if result.critical_failures else 0)


def _spark_session():
    """The active Spark session: a Databricks job task's, or a local one."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        console.print("[red]--engine spark needs pyspark (on Databricks it is there; here: pip install pyspark)[/red]")
        raise typer.Exit(2) from None
    return SparkSession.builder.getOrCreate()


@integrity_app.command("docs")
def docs() -> None:
    """Print where the integrity suite's Data Docs are (open index.html in a browser)."""
    from expectations.integrity import docs_index

    index = docs_index(load_settings())
    if not index.exists():
        console.print(f"no Data Docs yet at {index}: run `mls2 integrity run`")
        raise typer.Exit(1)
    typer.echo(str(index))
