"""`mls2 sync` and `mls2 sandbox`: thin commands over the ingestion workers."""

import json
import os
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import requests
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from conf.cli_options import split_list
from conf.entities import Entity, select_entities
from conf.settings import Settings, SettingsError, load_settings
from ingestion.client import ClientSettings, QobrixClient
from ingestion.errors import IngestionError, QobrixAuthError
from ingestion.sandbox.faults import TRANSIENT_KINDS, FaultConfig, FaultConfigError, Faults
from ingestion.saved_state import SavedStateError, kept_at, restore_state
from ingestion.state import SyncState
from ingestion.sync import Sync, SyncOptions, SyncReport

EXIT_CONFIG = 2
"""Exit code when settings or arguments are wrong: fix the configuration, do not retry."""
EXIT_QOBRIX = 3
"""Exit code when Qobrix failed after every retry: safe to retry later; watermarks did not move."""

console = Console(stderr=True)
sync_app = typer.Typer(help="Land Qobrix data as JSON Lines in the landing zone (full refresh or CDC).")
sandbox_app = typer.Typer(help="Run the local Qobrix sandbox: a Qobrix API v2 serving generated records.")


def sync_progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description:<30}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def print_sync_summary(report: SyncReport) -> None:
    title = f"Sync {report.sync_id} ({report.mode}{', resumed' if report.resumed else ''}): {report.status}"
    table = Table(title=title)
    for column in ("entity", "mode", "pages", "records", "deletes", "warnings", "reconciled"):
        table.add_column(column, justify="left" if column in ("entity", "mode", "reconciled") else "right")
    for entity in report.entities:
        table.add_row(
            entity.entity,
            entity.mode,
            str(entity.pages),
            str(entity.records),
            str(entity.deletes),
            str(entity.warnings),
            f"deletes withheld ({entity.withheld_deletes})" if entity.withheld_deletes else "yes" * entity.reconciled,
        )
    console.print(table)
    per_1000 = report.calls_per_1000_properties()
    console.print(f"{report.http_calls} HTTP calls" + (f" ({per_1000} per 1,000 properties)" if per_1000 else ""))
    for entity in report.entities:
        if entity.withheld_deletes:
            console.print(
                f"[yellow]{entity.entity}: {entity.withheld_deletes} known records were not in Qobrix's answer, "
                "more than MLS2_RECONCILE_MAX_DELETES_PERCENT allows; no delete was landed. If they were deleted, "
                f"`mls2 sync --full-refresh --entities {entity.entity}` lands the deletes."
            )
    if any(entity.warnings for entity in report.entities):
        console.print(
            "[yellow]Some records lack an id or a readable time; they were landed raw for the pipeline to quarantine."
        )


def make_client(
    settings: Settings, base_url: str, user: str, key: str, *, requests_per_second: float | None = None
) -> QobrixClient:
    return QobrixClient(
        base_url,
        user,
        key,
        ClientSettings(
            timeout=(5.0, settings.mls2_http_timeout_seconds),
            retries=settings.mls2_http_retries,
            requests_per_second=requests_per_second or settings.mls2_requests_per_second,
            pool_size=max(8, settings.mls2_max_in_flight),
        ),
    )


def sync_with_progress(
    settings: Settings,
    client: QobrixClient,
    *,
    entities: list[str] | None,
    full_refresh: bool,
    max_properties: int | None,
    max_in_flight: int | None = None,
    reconcile: bool = False,
) -> SyncReport:
    """Run a sync showing one progress bar per entity (and per reconciliation), then print its summary table."""
    if reconcile and (full_refresh or max_properties):
        raise ValueError(
            "--reconcile belongs to an incremental sync: --full-refresh already finds deleted records, "
            "and --max-properties lands a sample"
        )
    selected = select_entities(entities)
    options = sync_options(
        settings,
        full_refresh=full_refresh,
        max_properties=max_properties,
        max_in_flight=max_in_flight,
        reconcile=reconcile,
    )
    with kept_at(settings.mls2_sync_state_url, settings.sync_state_path):
        report = run_sync(settings, client, selected, options)
    print_sync_summary(report)
    return report


def sync_options(
    settings: Settings,
    *,
    full_refresh: bool = False,
    max_properties: int | None = None,
    max_in_flight: int | None = None,
    reconcile: bool = False,
) -> SyncOptions:
    every = settings.mls2_reconcile_every_hours
    return SyncOptions(
        reconcile=reconcile,
        reconcile_every=timedelta(hours=every) if every else None,
        reconcile_max_deletes=settings.mls2_reconcile_max_deletes_percent / 100,
        full_refresh=full_refresh,
        max_properties=max_properties,
        max_in_flight=max_in_flight or settings.mls2_max_in_flight,
        overlap=timedelta(seconds=settings.mls2_cdc_overlap_seconds),
        page_size=settings.mls2_page_size,
    )


def sync_quietly(settings: Settings) -> SyncReport:
    """One incremental sync of every entity from the configured Qobrix, with no progress bars (a
    server's thread: the pipeline UI's "Sync and update"); raises IngestionError when it fails."""
    base_url, user, key = settings.require_qobrix()
    client = make_client(settings, base_url, user, key)
    with kept_at(settings.mls2_sync_state_url, settings.sync_state_path):
        state = SyncState(settings.sync_state_path)
        try:
            sync = Sync(
                client=client,
                landing_root=settings.landing_root,
                state=state,
                entities=select_entities(None),
                options=sync_options(settings),
            )
            return sync.run()
        finally:
            state.close()
            client.close()


def run_sync(settings: Settings, client: QobrixClient, selected: list[Entity], options: SyncOptions) -> SyncReport:
    """One sync on the local state, a progress bar per entity."""
    state = SyncState(settings.sync_state_path)
    try:
        with sync_progress() as progress:
            tasks = {entity.name: progress.add_task(entity.name, total=None) for entity in selected}

            def on_page(entity: str, landed: int, expected: int | None) -> None:
                if entity not in tasks:
                    tasks[entity] = progress.add_task(entity, total=None)
                progress.update(tasks[entity], completed=landed, total=max(expected or 0, landed) or None)

            sync = Sync(
                client=client,
                landing_root=settings.landing_root,
                state=state,
                entities=selected,
                options=options,
                progress=on_page,
            )
            return sync.run()
    finally:
        state.close()


@sync_app.callback(invoke_without_command=True)
def sync(
    context: typer.Context,
    full_refresh: Annotated[
        bool, typer.Option("--full-refresh", help="Fetch every record; records gone from Qobrix become deletes.")
    ] = False,
    entities: Annotated[str | None, typer.Option(help="Comma-separated entities to sync (default: all).")] = None,
    max_properties: Annotated[
        int | None, typer.Option(min=1, help="Test mode: N properties and only what they reference.")
    ] = None,
    reconcile: Annotated[
        bool,
        typer.Option(
            "--reconcile",
            help="Also scan every live id (lean pages, nothing landed) and land deletes for records gone from "
            "Qobrix. Runs on its own every MLS2_RECONCILE_EVERY_HOURS.",
        ),
    ] = False,
    max_in_flight: Annotated[
        int | None, typer.Option(min=1, max=64, help="Requests in flight (default: MLS2_MAX_IN_FLIGHT).")
    ] = None,
) -> None:
    """Fetch Qobrix data into the landing zone: changes since the last sync, or everything.

    An incremental sync also reconciles (finds records deleted in Qobrix by scanning every live id)
    with --reconcile, and on its own every MLS2_RECONCILE_EVERY_HOURS (default 24).
    Needs QOBRIX_API_BASE_URL, QOBRIX_API_USER and QOBRIX_API_KEY. A sync that stopped
    (error, Ctrl+C, kill) resumes when run again with the same options.
    With MLS2_SYNC_STATE_URL the state is restored from there when this machine has none, and saved
    there after every sync (a Databricks job cluster's disk is new each run).
    Exit codes: 0 done, 2 configuration or arguments wrong, or the saved state unreadable or unwritable
    (fix, do not retry), 3 Qobrix failed after every retry (safe to retry; watermarks did not move).
    """
    if context.invoked_subcommand is not None:
        return
    try:
        settings = load_settings()
        base_url, user, key = settings.require_qobrix()
        client = make_client(settings, base_url, user, key)
        sync_with_progress(
            settings, client, entities=split_list(entities), full_refresh=full_refresh, max_properties=max_properties,
            max_in_flight=max_in_flight, reconcile=reconcile,
        )  # fmt: skip
    except (SettingsError, ValueError, QobrixAuthError, SavedStateError) as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(EXIT_CONFIG) from None
    except IngestionError as error:
        console.print(f"[red]sync failed:[/red] {error}")
        console.print("Watermarks did not move; run the same command again to resume.")
        raise typer.Exit(EXIT_QOBRIX) from None


@sync_app.command("status")
def sync_status() -> None:
    """Show each entity's watermarks and the most recent syncs."""
    settings = load_settings()
    if settings.mls2_sync_state_url:
        try:
            restore_state(settings.mls2_sync_state_url, settings.sync_state_path)
        except SavedStateError as error:
            console.print(f"[red]error:[/red] {error}")
            raise typer.Exit(EXIT_CONFIG) from None
    if not settings.sync_state_path.exists():
        console.print(f"No sync has run yet (no state at {settings.sync_state_path}).")
        return
    state = SyncState(settings.sync_state_path)
    try:
        marks = Table(title="Watermarks")
        for column in ("entity", "modified", "created", "last sync", "last full refresh"):
            marks.add_column(column)
        for mark in state.watermarks():
            marks.add_row(
                mark.entity,
                mark.modified or "",
                mark.created or "",
                mark.last_sync_id or "",
                mark.last_full_refresh or "",
            )
        reconciliations = Table(title="Last look for records deleted in Qobrix (full refresh or reconciliation)")
        for column in ("entity", "sync", "finished", "deletes withheld"):
            reconciliations.add_column(column)
        for looked in state.reconciliations():
            reconciliations.add_row(
                looked.entity, looked.sync_id, looked.finished_at, str(looked.withheld_deletes or "")
            )
        syncs = Table(title="Recent syncs")
        for column in ("sync id", "mode", "status", "started", "finished", "error"):
            syncs.add_column(column)
        for record in state.recent_syncs():
            syncs.add_row(
                record.sync_id,
                record.mode,
                record.status,
                record.started_at,
                record.finished_at or "",
                (record.error or "")[:80],
            )
    finally:
        state.close()
    out = Console()
    out.print(marks)
    out.print(reconciliations)
    out.print(syncs)


@sandbox_app.command("serve")
def sandbox_serve(
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8765,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    properties: Annotated[
        int, typer.Option(min=1, help="Number of properties to serve (other entities scale with it).")
    ] = 500,
    seed: Annotated[int, typer.Option(help="Seed of the generated data (same seed and size, same data).")] = 42,
    workers: Annotated[int, typer.Option(min=1, max=16, help="Worker processes (they share state through a log).")] = 1,
    fault_rate: Annotated[float, typer.Option(min=0, max=1, help="Fraction of API requests that fail.")] = 0.0,
    faults: Annotated[str, typer.Option(help=f"Fault kinds to draw from: {', '.join(TRANSIENT_KINDS)}.")] = ",".join(
        TRANSIENT_KINDS
    ),
    defect_rate: Annotated[
        float, typer.Option(min=0, max=1, help="Fraction of records served with a permanent defect.")
    ] = 0.0,
    churn_every: Annotated[
        int, typer.Option(min=0, help="Every N-th list request first changes some data (0: never).")
    ] = 0,
    retry_after: Annotated[float, typer.Option(min=0, help="Retry-After seconds of a 429.")] = 1.0,
    slow_seconds: Annotated[float, typer.Option(min=0, help="Stall of a slow response, in seconds.")] = 3.0,
) -> None:
    """Serve the Qobrix sandbox: API v2 at /api/v2 (X-Api-User sandbox-user, X-Api-Key sandbox-key).

    Admin routes: POST /_sandbox/advance (move time forward), GET /_sandbox/state, GET/PUT /_sandbox/faults.
    """
    # The server's modules load here, not with every other `mls2` command.
    import uvicorn

    from ingestion.sandbox.server import STATE_DIR_VARIABLE, create_app
    from ingestion.sandbox.shared import SharedSandbox
    from ingestion.sandbox.world import SandboxWorld

    try:
        config = FaultConfig(
            rate=fault_rate, kinds=tuple(split_list(faults) or ()), defect_rate=defect_rate, churn_every=churn_every,
            retry_after=retry_after, slow_seconds=slow_seconds, seed=seed,
        ).validate()  # fmt: skip
    except FaultConfigError as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(EXIT_CONFIG) from None
    console.print(
        f"Qobrix sandbox: http://{host}:{port}/api/v2 ({properties} properties, seed {seed}, {workers} worker(s))"
    )
    if workers == 1:
        world = SandboxWorld(seed=seed, properties=properties)
        app = create_app(SharedSandbox(world, faults=Faults(config)))
        uvicorn.run(app, host=host, port=port, log_level="warning")
        return
    with tempfile.TemporaryDirectory(prefix="mls2-sandbox-") as state_dir:
        Path(state_dir, "sandbox.json").write_text(json.dumps({"seed": seed, "properties": properties}))
        Path(state_dir, "faults.json").write_text(json.dumps(config.public()))
        os.environ[STATE_DIR_VARIABLE] = state_dir
        uvicorn.run(
            "ingestion.sandbox.server:app_from_environment",
            factory=True,
            workers=workers,
            host=host,
            port=port,
            log_level="warning",
        )


@sandbox_app.command("advance")
def sandbox_advance(
    url: Annotated[str, typer.Option(help="The sandbox's root URL.")] = "http://127.0.0.1:8765",
    steps: Annotated[int, typer.Option(min=1, max=10_000, help="Steps of 15 sandbox minutes to apply.")] = 1,
) -> None:
    """Move a running sandbox's time forward: records are created, edited, trashed, restored and deleted."""
    try:
        response = requests.post(f"{url.rstrip('/')}/_sandbox/advance", params={"steps": steps}, timeout=60)
        response.raise_for_status()
    except requests.RequestException as error:
        console.print(f"[red]error:[/red] the sandbox at {url} did not answer: {error}")
        raise typer.Exit(EXIT_QOBRIX) from None
    report = response.json()
    table = Table(title=f"Sandbox step {report['step']} (clock {report['clock']})")
    table.add_column("entity")
    table.add_column("changes")
    for entity, kinds in report["changed"].items():
        table.add_row(entity, ", ".join(f"{kind} {len(ids)}" for kind, ids in kinds.items()))
    Console().print(table)
