"""`mls2 pipeline`: run an update on the embedded engine; show the graph, the event log and RESO coverage.

The engine's modules, and the HTTP client, load in the commands that use them: `mls2 pipeline run`
sent to a running server (`pipelines.ui.control`) loads no engine library.
"""

import shutil
import signal
from collections.abc import Callable
from contextlib import suppress
from typing import TYPE_CHECKING, Annotated

import orjson
import typer
from rich.console import Console
from rich.table import Table

from conf.cli_options import split_list
from conf.settings import Settings, load_settings

if TYPE_CHECKING:
    from pipelines.embedded import Maintenance
    from pipelines.ui.control import RunningServer

console = Console(stderr=True)
pipeline_app = typer.Typer(help="Run the bronze -> silver -> gold pipeline on the embedded engine.")


def print_update(report: dict) -> None:
    """The flows that ran, as a table, and how many had nothing new to read: after a small sync most
    of them do, and a row each said nothing (`mls2 pipeline events` lists every flow). `report` is
    `pipelines.embedded.update_report`'s, of this process's update or a server's."""
    ran = [flow for flow in report["flows"] if flow["status"] != "SKIPPED"]
    skipped = len(report["flows"]) - len(ran)
    table = Table(
        title=f"Update {report['update_id']}: {report['state']}",
        caption=f"{skipped} datasets skipped: nothing new to read" if skipped else None,
    )
    for column in ("dataset", "status", "input", "output", "dropped", "deleted"):
        table.add_column(column, justify="left" if column in ("dataset", "status") else "right")
    for flow in ran:
        counts = ("input_records", "output_records", "dropped_records", "deleted_records")
        table.add_row(flow["dataset"], flow["status"], *(str(flow[count]) for count in counts))
    console.print(table)
    if published := report["published"]:
        tables = ", ".join(f"{name} {how}" for name, how in published["tables"].items())
        console.print(
            f"Published gold snapshot of update {published['update_id']} in {published['seconds']:.1f} s ({tables})"
        )


AFTER_UPDATE: list[Callable[[Settings], bool]] = []
"""Steps the `mls2` command runs after each update it starts (the integrity suite, added by
`conf.cli`): each returns whether what it checked holds."""


def update_with_progress(settings: Settings, **selection: object) -> dict:
    """One update in this process, its progress shown as it runs; its report (`print_update`)."""
    from pipelines.embedded import maintain_if_due, run_update, update_report

    with console.status("pipeline update") as status:
        result = run_update(
            settings.paths,
            progress=lambda dataset, state: status.update(f"{dataset}: {state}"),
            memory_limit=settings.mls2_engine_memory_limit,
            key_index_cells=settings.mls2_engine_key_index_cells,
            reserve_bytes=settings.mls2_min_free_mb * 2**20,
            **selection,
        )
    report = update_report(result)
    print_update(report)
    with console.status("daily maintenance, when due: vacuum, landing retirement"):
        done = maintain_if_due(
            settings.paths, settings.mls2_lakehouse_retention_hours, settings.mls2_landing_retention_days
        )
    if done is not None:
        print_maintenance(done, settings.mls2_lakehouse_retention_hours, settings.mls2_landing_retention_days)
    return report


def checks_after_update(settings: Settings) -> bool:
    """Run the steps added to AFTER_UPDATE; whether all of them hold."""
    return all([step(settings) for step in AFTER_UPDATE])


def print_maintenance(done: "Maintenance", retention_hours: int, landing_days: float) -> None:
    if done.vacuumed is not None:
        removed = done.vacuumed
        console.print(
            f"Vacuumed the lakehouse: {sum(removed.values()):,} data files older than {retention_hours} h removed "
            f"from {sum(1 for count in removed.values() if count)} of {len(removed)} tables"
        )
    if done.retired is not None:
        console.print(
            f"Retired {sum(done.retired.values()):,} landing pages older than {landing_days:g} days "
            "whose lines bronze holds"
        )


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
    here: Annotated[
        bool,
        typer.Option(
            "--here",
            help="Run the update in this process even when a server (`mls2 serve`, the demo) runs the pipeline "
            "UI for this data folder (by default the update is sent to it).",
        ),
    ] = False,
) -> None:
    """Run one pipeline update: new landing files through bronze, silver and gold, then publish for serving.
    When a server runs the pipeline UI for this data folder (`mls2 serve`, the demo), the update runs there
    as the UI's buttons run one, its progress shown here; otherwise, or with --here, in this process."""
    settings = load_settings()
    selection = {
        "full_refresh": full_refresh,
        "refresh": split_list(refresh),
        "full_refresh_selection": split_list(full_refresh_selection),
    }
    server = None if here else _server_for(settings)
    if server is not None and (action := server_action(**selection)) is not None:
        raise typer.Exit(run_on_server(server, *action))
    if server is not None:
        console.print(
            "[yellow]The server's updates take one kind of selection: this one runs here "
            "(the server's pipeline lock permitting)[/yellow]"
        )
    from pipelines.declaration import DeclarationError
    from pipelines.embedded import PipelineError

    try:
        update_with_progress(settings, **selection)
    except (PipelineError, DeclarationError) as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(1) from None
    if not checks_after_update(settings):
        console.print("[red]the update completed, but a critical integrity expectation failed (above)[/red]")
        raise typer.Exit(3)


def _server_for(settings: Settings) -> "RunningServer | None":
    """The server announced for the data folder, or None (said when its announcement is stale)."""
    from pipelines.ui.control import ControlError, ServerUnreachable, announced_server

    try:
        return announced_server(settings.paths)
    except ServerUnreachable as gone:
        console.print(f"[dim]{gone}: the update runs here[/dim]")
        return None
    except ControlError as error:
        console.print(f"[red]error:[/red] {error}; or run the update here with --here")
        raise typer.Exit(1) from None


def server_action(
    full_refresh: bool, refresh: list[str] | None, full_refresh_selection: list[str] | None
) -> tuple[str, list[str]] | None:
    """The UI's action (and datasets) that asks a server for this update; None for a mix of
    selections, which none of its actions takes."""
    if full_refresh:
        return None if refresh or full_refresh_selection else ("full_refresh", [])
    if refresh and full_refresh_selection:
        return None
    if refresh:
        return "refresh_selection", refresh
    if full_refresh_selection:
        return "full_refresh_selection", full_refresh_selection
    return "update", []


def _follow(server: "RunningServer", update_id: str) -> dict | int:
    """The update's end event, its progress shown meanwhile; or the exit status when following it
    failed or was given up (a first Ctrl+C asks the server to cancel it, a second stops following)."""
    from pipelines.ui.control import ControlError, ServerUnreachable, cancel_update, follow_update

    end: dict = {}
    canceling = False
    with console.status("pipeline update (on the server)") as status:
        while not end:
            try:
                for event, data in follow_update(server, update_id):
                    if event == "flow":
                        status.update(f"{data['dataset']}: {data['state']} (on the server)")
                    elif event == "end":
                        end = data
            except KeyboardInterrupt:
                if end:
                    break
                if canceling:
                    console.print(f"Stopped following; the server cancels it: {server.update_page(update_id)}")
                    return 130
                canceling = True
                console.print("Asking the server to cancel the update (Ctrl+C again stops following it)")
                try:
                    with suppress(ControlError, ServerUnreachable):  # it ended meanwhile: its end says how
                        cancel_update(server, update_id)
                except KeyboardInterrupt:
                    console.print(f"Stopped following; see {server.update_page(update_id)}")
                    return 130
            except (ControlError, ServerUnreachable) as error:
                console.print(f"[red]error:[/red] {error}")
                return 1
    return end


def run_on_server(server: "RunningServer", action: str, datasets: list[str]) -> int:
    """Send the update to `server` and follow it to its end; the exit status `run` would have had
    (0 done, 1 failed or canceled, 3 a critical integrity expectation failed). Ctrl+C asks the server
    to cancel it."""
    from pipelines.ui.control import ControlError, ServerUnreachable, start_update

    # Stopping the shell stops its update, as it does an update in the shell's own process.
    stops = {number: signal.signal(number, signal.default_int_handler) for number in (signal.SIGTERM, signal.SIGHUP)}
    try:
        try:
            update_id = start_update(server, action, datasets)
        except (ControlError, ServerUnreachable) as error:
            console.print(f"[red]error:[/red] the server at {server.url} did not start the update: {error}")
            return 1
        except KeyboardInterrupt:
            console.print(f"Stopped while asking the server: the update may have started (see {server.url}/ui)")
            return 130
        console.print(f"Update {update_id} runs on the server: {server.update_page(update_id)}", soft_wrap=True)
        end = _follow(server, update_id)
    finally:
        for number, handler in stops.items():
            signal.signal(number, handler)
    if isinstance(end, int):
        return end
    if end.get("report"):
        print_update(end["report"])
    if end["state"] == "CANCELED":
        console.print(f"[yellow]{end.get('error') or 'the update was canceled'}[/yellow]")
        return 1
    if end["state"] != "COMPLETED":
        console.print(f"[red]error:[/red] the update failed: {end.get('error')}")
        return 1
    if end.get("checks") == "failed":
        console.print(
            "[red]the update completed, but a critical integrity expectation failed[/red] "
            f"(the server's log; the UI's quality page at {server.url}/ui/quality)"
        )
        return 3
    return 0


@pipeline_app.command("vacuum")
def vacuum(
    retain_hours: Annotated[
        int | None,
        typer.Option(
            min=0, help="Keep what versions of the last H hours use (default: MLS2_LAKEHOUSE_RETENTION_HOURS)."
        ),
    ] = None,
) -> None:
    """Delete lakehouse data files no recent table version uses, and files no version names (left by writes
    that failed before their commit): Delta VACUUM; then, with MLS2_LANDING_RETENTION_DAYS, the landing
    pages older than that whose lines bronze holds. `run` does this once a day."""
    settings = load_settings()
    hours = settings.mls2_lakehouse_retention_hours if retain_hours is None else retain_hours
    if retain_hours is None and not hours and not settings.mls2_landing_retention_days:
        console.print("[red]error:[/red] MLS2_LAKEHOUSE_RETENTION_HOURS is 0 (vacuum off); pass --retain-hours")
        raise typer.Exit(2)
    days = settings.mls2_landing_retention_days
    from pipelines.embedded import PipelineError, maintain

    try:
        with console.status("vacuuming the lakehouse and retiring landing pages"):
            done = maintain(settings.paths, hours if retain_hours is not None or hours else None, days)
    except PipelineError as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(1) from None
    print_maintenance(done, hours, days)


@pipeline_app.command("optimize")
def optimize() -> None:
    """Compact the tables updates write merge-on-read (AUTO CDC targets and views refreshed by key): rewrite
    their files that hold deleted rows, and their small files, as files of the live rows. Updates do this
    on their own past a threshold; the rows stay the same."""
    from pipelines.embedded import PipelineError, optimize_lakehouse

    settings = load_settings()
    try:
        with console.status("compacting the lakehouse"):
            rewritten = optimize_lakehouse(settings.paths)
    except PipelineError as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(1) from None
    console.print(
        f"Optimized the lakehouse: {sum(rewritten.values()):,} files rewritten in "
        f"{sum(1 for count in rewritten.values() if count)} of {len(rewritten)} merge-on-read tables"
    )


@pipeline_app.command("storage")
def storage() -> None:
    """Disk per layer of MLS2_DATA_DIR (landing, each lakehouse schema, the serving snapshots, state, the
    engine's spill files), the free space of its disk, and what the next update is estimated to need
    (it does not start without it)."""
    from pipelines.embedded import disk_by_layer, human_bytes, space_needed
    from pipelines.snapshot.copies import can_clone

    settings = load_settings()
    paths = settings.paths
    table = Table(title=f"Disk under {paths.root}")
    for column in ("layer", "size", "files"):
        table.add_column(column, justify="left" if column == "layer" else "right")
    layers = disk_by_layer(paths)
    for layer in layers:
        table.add_row(layer.name, human_bytes(layer.bytes), f"{layer.files:,}")
    table.add_row(
        "total", human_bytes(sum(layer.bytes for layer in layers)), f"{sum(layer.files for layer in layers):,}"
    )
    Console().print(table)
    free = shutil.disk_usage(paths.root).free if paths.root.exists() else 0
    needed = space_needed(paths, reserve_bytes=settings.mls2_min_free_mb * 2**20)
    parts = ", ".join(f"{part} {human_bytes(size)}" for part, size in needed.items())
    total = human_bytes(sum(needed.values()))
    console.print(f"Free on its disk: {human_bytes(free)}; the next update needs about {total} ({parts})")
    try:
        clones = can_clone(paths.root) if paths.root.exists() else None
    except OSError:  # a data directory it cannot write to: nothing to say about publishing in it
        clones = None
    if clones is not None:
        console.print(
            "Its file system clones files: a publish patches a clone of a served snapshot file, which takes on "
            "disk the blocks the patch writes, not a copy."
            if clones
            else "Its file system cannot clone files (XFS with reflink and Btrfs can): the first update after a "
            "full refresh copies each changed table's snapshot file."
        )


GRAPH_FORMATS = ("text", "mermaid", "dot")


@pipeline_app.command("graph")
def graph(
    output: Annotated[str, typer.Option("--format", help=f"One of {', '.join(GRAPH_FORMATS)}.")] = "text",
) -> None:
    """Show every dataset in dependency order with its kind, inputs and expectations (or as Mermaid / Graphviz)."""
    if output not in GRAPH_FORMATS:
        console.print(f"[red]error:[/red] --format must be one of {', '.join(GRAPH_FORMATS)}, not {output!r}")
        raise typer.Exit(2)
    from pipelines.diagram import diagram_lines
    from pipelines.graph import load_graph

    pipeline = load_graph()
    if output != "text":
        typer.echo("\n".join(diagram_lines(pipeline, output)))
        return
    table = Table(title="Pipeline graph")
    for column in ("dataset", "kind", "reads", "expectations", "refreshed by key"):
        table.add_column(column)
    for dataset in pipeline.ordered():
        source = f"landing/{dataset.landing.entity}" if dataset.landing else ", ".join(dataset.depends_on)
        by_key = dataset.incremental.describe() if dataset.incremental else ""
        table.add_row(dataset.name, dataset.kind, source, str(len(dataset.expectations)), by_key)
    Console(width=200).print(table)


@pipeline_app.command("events")
def events(
    update: Annotated[str | None, typer.Option(help="Update id (default: the latest update).")] = None,
    event_type: Annotated[str | None, typer.Option("--type", help="Only this event type, e.g. flow_progress.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="Most events to show.")] = 200,
) -> None:
    """Show the event log of an update: its states and each flow's rows and data quality."""
    from pipelines.embedded import PipelineError, read_events

    settings = load_settings()
    try:
        rows = read_events(settings.paths.lakehouse, update=update, event_type=event_type, limit=limit)
    except PipelineError as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(1) from None
    print_events(rows, rows[0]["update_id"] if rows else update or "(none)")


def print_events(rows: list[dict], update_id: str) -> None:
    """Events as a table: time, type, dataset, state, output rows, dropped rows, failed expectations.
    `details` is the event's JSON (text in the embedded event log, a dict from Databricks' REST API)."""
    table = Table(title=f"Events of update {update_id}")
    for column in ("time", "event", "dataset", "state", "output rows", "dropped", "failed expectations"):
        table.add_column(column)
    for row in rows:
        details = orjson.loads(row["details"]) if isinstance(row["details"], str | bytes) else row["details"]
        progress = details.get("flow_progress") or {}
        state = progress.get("status") or (details.get("update_progress") or {}).get("state") or planned(details)
        quality = progress.get("data_quality") or {}
        failed = ", ".join(
            f"{e['name']} {e['failed_records']}" for e in quality.get("expectations", []) if e["failed_records"]
        )
        metrics = progress.get("metrics") or {}
        table.add_row(
            row["timestamp"].strftime("%H:%M:%S"), row["event_type"], row["dataset"] or "", state,
            str(metrics.get("num_output_rows", "")), str(quality.get("dropped_records", "")), failed,
        )  # fmt: skip
    Console(width=200).print(table)


def planned(details: dict) -> str:
    """A planning event's chosen refresh technique, with why row-based maintenance was not chosen."""
    options = (details.get("planning_information") or {}).get("technique_information", [])
    chosen = next((option.get("maintenance_type", "") for option in options if option.get("is_chosen")), "")
    reasons = [issue["reason"] for option in options for issue in option.get("incrementalization_issues", [])]
    return chosen.removeprefix("MAINTENANCE_TYPE_") + "".join(f" ({reason})" for reason in reasons)


@pipeline_app.command("coverage")
def coverage_command(
    data: Annotated[
        bool, typer.Option("--data", help="Also count the fields that hold a value in the built gold tables.")
    ] = False,
    markdown: Annotated[
        bool, typer.Option("--markdown", help="Print a Markdown table (as in docs/COVERAGE.md).")
    ] = False,
) -> None:
    """Per RESO resource: DD 2.0 fields filled, X_ extension fields, Qobrix source columns carried."""
    from pipelines.coverage import as_markdown, coverage
    from pipelines.embedded import Lakehouse

    settings = load_settings()
    report = coverage(Lakehouse(settings.paths.lakehouse) if data else None)
    if markdown:
        typer.echo(as_markdown(report), nl=False)
        return
    table = Table(title="RESO coverage" + (" (mapping and data)" if data else " (mapping)"))
    columns = ["resource", "DD 2.0 fields", "X_ fields", "source columns"]
    if data:
        columns += ["records", "DD fields with data", "X_ fields with data"]
    for column in columns:
        table.add_column(column, justify="left" if column == "resource" else "right")
    for r in report:
        cells = [r.resource, f"{r.standard} of {r.dictionary}", str(r.local), str(r.source_columns)]
        if data:
            cells += [str(r.records), str(r.standard_filled), str(r.local_filled)]
        table.add_row(*cells)
    Console().print(table)
