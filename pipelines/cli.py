"""`mls2 pipeline`: run an update on the embedded engine, show the graph."""

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from conf.cli_options import split_list
from conf.settings import Settings, load_settings
from pipelines import DeclarationError, PipelineError, UpdateResult, load_graph, run_update

console = Console(stderr=True)
pipeline_app = typer.Typer(help="Run the bronze -> silver -> gold pipeline on the embedded engine.")


def print_update(result: UpdateResult) -> None:
    table = Table(title=f"Update {result.update_id}: {result.state}")
    for column in ("dataset", "status", "input", "output", "dropped", "deleted"):
        table.add_column(column, justify="left" if column in ("dataset", "status") else "right")
    for flow in result.flows:
        table.add_row(
            flow.dataset,
            flow.status,
            str(flow.input_records),
            str(flow.output_records),
            str(flow.dropped_records),
            str(flow.deleted_records),
        )
    console.print(table)
    if result.published:
        console.print(f"Published gold snapshot {result.published['file']}")


def update_with_progress(settings: Settings, **selection: object) -> UpdateResult:
    with console.status("pipeline update") as status:
        result = run_update(
            settings.paths, progress=lambda dataset, state: status.update(f"{dataset}: {state}"), **selection
        )
    print_update(result)
    return result


@pipeline_app.command("run")
def run(
    full_refresh: Annotated[
        bool, typer.Option("--full-refresh", help="Recompute every dataset from all landed data.")
    ] = False,
    refresh: Annotated[
        str | None, typer.Option(help="Comma-separated datasets to update (others are left as they are).")
    ] = None,
    full_refresh_selection: Annotated[
        str | None, typer.Option(help="Comma-separated datasets to recompute from scratch.")
    ] = None,
) -> None:
    """Run one pipeline update: new landing files through bronze, silver and gold, then publish for serving."""
    try:
        update_with_progress(
            load_settings(),
            full_refresh=full_refresh,
            refresh=split_list(refresh),
            full_refresh_selection=split_list(full_refresh_selection),
        )
    except (PipelineError, DeclarationError) as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(1) from None


@pipeline_app.command("graph")
def graph() -> None:
    """Show every dataset in dependency order with its kind and inputs."""
    table = Table(title="Pipeline graph")
    for column in ("dataset", "kind", "reads", "expectations"):
        table.add_column(column)
    for dataset in load_graph().ordered():
        source = f"landing/{dataset.landing.entity}" if dataset.landing else ", ".join(dataset.depends_on)
        table.add_row(dataset.name, dataset.kind, source, str(len(dataset.expectations)))
    Console().print(table)
