"""`mls2 integrity run | docs`: the integrity suites over the embedded lakehouse."""

import typer
from rich.console import Console
from rich.table import Table

from conf.settings import Settings, SettingsError, load_settings
from expectations.suite_files import SuiteError

console = Console(stderr=True)
integrity_app = typer.Typer(
    help="The integrity suite (Great Expectations): RESO conformance, reconciliation with Qobrix, freshness.",
    no_args_is_help=True,
)


def print_run(result) -> None:
    table = Table(title=f"Integrity run {result.run_id}")
    for column in ("suite", "dataset", "expectation", "severity", "result", "found"):
        table.add_column(column)
    for item in result.results:
        verdict = "[green]passed[/green]" if item.success else "[red]failed[/red]"
        found = item.message or ", ".join(item.unexpected_sample[:3]) + (
            f" ({item.unexpected_count})" if item.unexpected_count else ""
        )
        table.add_row(item.suite, item.dataset, item.expectation, item.severity, verdict, found)
    console.print(table)
    failed = result.critical_failures
    console.print(f"{len(failed)} critical failures of {len(result.results)} expectations. Data Docs: {result.docs}")


def integrity_after_update(settings: Settings) -> bool:
    """The suite after each `mls2 pipeline run` (unless MLS2_INTEGRITY_AFTER_UPDATE is false): whether
    no critical expectation failed."""
    if not settings.mls2_integrity_after_update:
        return True
    from expectations.integrity import IntegrityError, run_integrity

    try:
        with console.status("running the integrity suites"):
            result = run_integrity(settings)
    except (SuiteError, IntegrityError) as error:
        console.print(f"[red]the integrity suites could not run:[/red] {error}")
        return False
    print_run(result)
    return not result.critical_failures


@integrity_app.command("run")
def run() -> None:
    """Run every suite of expectations/suites over the lakehouse, append the results to
    mls2_system.integrity_results and rebuild the Data Docs. Exit code 1 when a critical
    expectation fails, 2 when the suites or settings cannot be used."""
    # Great Expectations loads here, not with every other `mls2` command.
    from expectations.integrity import IntegrityError, run_integrity

    try:
        settings = load_settings()
        with console.status("running the integrity suites"):
            result = run_integrity(settings)
    except (SettingsError, SuiteError, IntegrityError) as error:
        console.print(f"[red]cannot run the integrity suites:[/red] {error}")
        raise typer.Exit(2) from None
    print_run(result)
    raise typer.Exit(1 if result.critical_failures else 0)


@integrity_app.command("docs")
def docs() -> None:
    """Print where the integrity suite's Data Docs are (open index.html in a browser)."""
    from expectations.integrity import docs_index

    index = docs_index(load_settings())
    if not index.exists():
        console.print(f"no Data Docs yet at {index}: run `mls2 integrity run`")
        raise typer.Exit(1)
    typer.echo(str(index))
