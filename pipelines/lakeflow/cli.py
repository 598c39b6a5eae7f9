"""`mls2 databricks`: start and follow updates of the deployed Lakeflow pipeline, read its event log.

Exit codes a scheduler can act on: 0 the update completed; 1 it failed or was canceled (the first
error is printed); 2 it could not start (settings, credentials, the pipeline, the selection);
3 the workspace stopped answering while the update ran (it goes on there); 130 interrupted while
waiting (the update goes on on Databricks).
"""

import time
from datetime import datetime
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from conf.cli_options import split_list
from conf.settings import SettingsError, load_settings
from pipelines import DeclarationError, load_graph
from pipelines.cli import print_events
from pipelines.lakeflow.workspace import TERMINAL_STATES, Update, Workspace, WorkspaceError, event_row, workspace_client

EXIT_FAILED = 1
EXIT_NOT_STARTED = 2
EXIT_LOST = 3
EXIT_INTERRUPTED = 130

console = Console(stderr=True)
databricks_app = typer.Typer(
    help="Drive the pipeline deployed on Databricks (`databricks bundle deploy`): start and follow updates, "
    "show its status and event log. Credentials: DATABRICKS_HOST and DATABRICKS_TOKEN, or the SDK's usual ones."
)

PipelineOption = Annotated[
    str | None, typer.Option("--pipeline", help="Pipeline id or exact name (default: MLS2_DATABRICKS_PIPELINE).")
]


def connect(pipeline: str | None) -> tuple[Workspace, float]:
    """The workspace's pipeline and the poll interval, or exit 2 naming the problem."""
    try:
        settings = load_settings()
        client = workspace_client(settings)
    except (SettingsError, WorkspaceError) as error:
        fail(error, EXIT_NOT_STARTED)
    return Workspace(client, pipeline or settings.mls2_databricks_pipeline), settings.mls2_databricks_poll_seconds


def fail(error: Exception | str, code: int) -> NoReturn:
    console.print(f"[red]error:[/red] {error}")
    raise typer.Exit(code)


def selection(names: str | None) -> list[str] | None:
    """Datasets named in a selection, each a table of the declared graph (views are not refreshed alone)."""
    chosen = split_list(names)
    if chosen is None:
        return None
    graph = load_graph()
    graph.check_names(chosen)
    views = [name for name in chosen if graph[name].kind == "temporary_view"]
    if views:
        raise DeclarationError(f"temporary views are not tables and cannot be refreshed alone: {', '.join(views)}")
    return chosen


@databricks_app.command("run")
def run(
    pipeline: PipelineOption = None,
    full_refresh: Annotated[
        bool, typer.Option("--full-refresh", help="Recompute every table from all landed data.")
    ] = False,
    refresh: Annotated[str | None, typer.Option(help="Comma-separated datasets to update (others stay).")] = None,
    full_refresh_selection: Annotated[
        str | None, typer.Option(help="Comma-separated datasets to recompute from scratch.")
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="Follow the update to its end (default) or just start it.")
    ] = True,
) -> None:
    """Start an update of the Databricks pipeline and follow it flow by flow to its end.

    Exit code 0: completed; 1: failed or canceled; 2: could not start; 3: the workspace stopped answering
    while the update ran; 130: interrupted while waiting."""
    try:
        refresh_list, full_list = selection(refresh), selection(full_refresh_selection)
    except DeclarationError as error:
        fail(error, EXIT_NOT_STARTED)
    if full_refresh and (refresh_list or full_list):
        fail("--full-refresh recomputes everything: do not combine it with a selection", EXIT_NOT_STARTED)
    workspace, poll_seconds = connect(pipeline)
    try:
        update_id = workspace.start(full_refresh=full_refresh, refresh=refresh_list, full_refresh_selection=full_list)
    except WorkspaceError as error:
        fail(error, EXIT_NOT_STARTED)
    console.print(f"Started update {update_id} of pipeline {workspace.pipeline_id()} on {workspace.host}")
    if not wait:
        typer.echo(update_id)
        return
    try:
        update = follow(workspace, update_id, poll_seconds)
        first_error = None if update.state == "COMPLETED" else workspace.first_error(update)
    except WorkspaceError as error:
        fail(f"lost track of update {update_id}, which goes on on Databricks: {error}", EXIT_LOST)
    except KeyboardInterrupt:
        console.print(
            f"Stopped waiting; update {update_id} goes on on Databricks "
            "(`mls2 databricks status`, or stop it in the workspace)."
        )
        raise typer.Exit(EXIT_INTERRUPTED) from None
    if update.state != "COMPLETED":
        fail(f"update {update_id} {update.state}" + (f": {first_error}" if first_error else ""), EXIT_FAILED)
    console.print(f"Update {update_id} COMPLETED")


def follow(workspace: Workspace, update_id: str, poll_seconds: float) -> Update:
    """Poll the update until it ends; the bar counts flows done, each printed as it ends."""
    seen: set[str] = set()
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed} flows"))
    with Progress(*columns, TimeElapsedColumn(), console=console) as progress:
        task = progress.add_task(f"update {update_id}", total=None)
        since = None
        while True:
            update = workspace.update(update_id)
            progress.update(task, description=f"update {update_id}: {update.state}")
            for event in workspace.events(update, since=since):
                if event["id"] in seen:
                    continue
                seen.add(event["id"])
                since = datetime.fromisoformat(event["timestamp"])
                flow = (event.get("details") or {}).get("flow_progress") or {}
                if flow.get("status") in ("COMPLETED", "FAILED", "SKIPPED", "STOPPED"):
                    name = event.get("origin", {}).get("flow_name") or event.get("origin", {}).get("dataset_name")
                    progress.console.print(f"  {name}: {flow['status']}")
                    progress.advance(task)
            if update.state in TERMINAL_STATES:
                return update
            time.sleep(poll_seconds)


@databricks_app.command("status")
def status(pipeline: PipelineOption = None) -> None:
    """Show the pipeline's state and health and its latest updates."""
    workspace, _ = connect(pipeline)
    try:
        found, updates = workspace.status()
    except WorkspaceError as error:
        fail(error, EXIT_NOT_STARTED)
    state = found.state.value if found.state else "UNKNOWN"
    health = found.health.value if found.health else "UNKNOWN"
    console.print(f"Pipeline {found.name} ({found.pipeline_id}) on {workspace.host}: {state}, health {health}")
    table = Table(title="Latest updates")
    for column in ("update", "started", "state", "refresh", "cause"):
        table.add_column(column)
    for update in updates:
        started = update.created.strftime("%Y-%m-%d %H:%M:%S") if update.created else ""
        table.add_row(update.update_id, started, update.state, "full" if update.full_refresh else "", update.cause)
    Console(width=200).print(table)


@databricks_app.command("events")
def events(
    pipeline: PipelineOption = None,
    update: Annotated[str | None, typer.Option(help="Update id (default: the latest update).")] = None,
    event_type: Annotated[str | None, typer.Option("--type", help="Only this event type, e.g. flow_progress.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="Most events to show.")] = 200,
) -> None:
    """Show the event log of an update as `mls2 pipeline events` does: each flow's rows and data quality."""
    workspace, _ = connect(pipeline)
    try:
        found = workspace.update(update) if update else workspace.latest_update()
        rows = [event_row(event) for event in workspace.events(found, event_type=event_type, limit=limit)]
    except WorkspaceError as error:
        fail(error, EXIT_NOT_STARTED)
    if not rows:
        fail(f"no events for update {found.update_id}", EXIT_FAILED)
    print_events(rows, found.update_id)
