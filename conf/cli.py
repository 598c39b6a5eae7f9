"""`mls2`: the one console command. Each package owns its subcommands; `demo` runs them all."""

import importlib
from contextlib import AbstractContextManager, nullcontext
from typing import Annotated

import typer
import typer.core
import typer.main
from rich.console import Console

import graphql_odata.cli
from conf.settings import Settings, SettingsError, load_settings
from graphql_odata.cli import AROUND_SERVING, clients_app, reserve_socket, serve, token_recipe
from graphql_odata.security.clients import ClientRegistry
from pipelines.cli import AFTER_UPDATE, checks_after_update, pipeline_app, update_with_progress
from pipelines.ui.announcement import announced, local_url
from pipelines.ui.cli import operators_app

LOADED_WHEN_RUN = {
    "sandbox": ("ingestion.cli", "sandbox_app"),
    "sync": ("ingestion.cli", "sync_app"),
    "reso": ("graphql_odata.certification.cli", "reso_app"),
    "databricks": ("pipelines.lakeflow.cli", "databricks_app"),
    "integrity": ("expectations.cli", "integrity_app"),
}
"""Subcommands whose packages (an HTTP client, the certification check's schemas, SQL parsing, the
integrity suite) are imported only when one of them runs or help lists them: every other command
starts without them, and `mls2 pipeline run` sent to a running server without the engine too."""
COMMAND_ORDER = {
    name: position
    for position, name in enumerate(
        ("serve", "demo", "sandbox", "sync", "pipeline", "clients", "databricks", "reso", "integrity", "operators")
    )
}
"""The order help lists the commands in; one not named here comes after them."""


class Mls2Commands(typer.core.TyperGroup):
    """`mls2`'s subcommands, those of `LOADED_WHEN_RUN` loaded on first use (Click's lazy group)."""

    def list_commands(self, ctx: typer.Context) -> list[str]:
        names = {*super().list_commands(ctx), *LOADED_WHEN_RUN}
        return sorted(names, key=lambda name: (COMMAND_ORDER.get(name, len(COMMAND_ORDER)), name))

    def get_command(self, ctx: typer.Context, cmd_name: str):
        if cmd_name in LOADED_WHEN_RUN and cmd_name not in self.commands:
            module, attribute = LOADED_WHEN_RUN[cmd_name]
            group = typer.main.get_group(getattr(importlib.import_module(module), attribute))
            group.name = cmd_name
            self.commands[cmd_name] = group
        return super().get_command(ctx, cmd_name)

    def resolve_command(self, ctx: typer.Context, args: list[str]):
        if args and args[0] not in self.commands and args[0] not in LOADED_WHEN_RUN:
            # A mistyped command: its suggestions ("Did you mean 'sync'?") come from every command.
            for name in LOADED_WHEN_RUN:
                self.get_command(ctx, name)
        return super().resolve_command(ctx, args)


app = typer.Typer(
    name="mls2",
    help="MLS 2.0: Qobrix CRM -> RESO Data Dictionary 2.0 lakehouse, served as a RESO Web API.",
    cls=Mls2Commands,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(pipeline_app, name="pipeline")
app.add_typer(clients_app, name="clients")
app.add_typer(operators_app, name="operators")
app.command("serve")(serve)
graphql_odata.cli.APP_FACTORY = "conf.cli:serving_app"


def serves_pipeline_ui(settings: Settings) -> bool:
    """Not with MLS2_API_BACKEND=databricks: that pipeline is Databricks'."""
    return settings.mls2_api_backend != "databricks"


def integrity_after_update(settings: Settings) -> bool:
    """The integrity suite after each update `mls2` runs (`expectations.cli`, loaded only then)."""
    from expectations.cli import integrity_after_update as run_suites

    return run_suites(settings)


def announce_pipeline_ui(settings: Settings, host: str, port: int) -> AbstractContextManager:
    """While `mls2 serve` or the demo serves the pipeline UI, `mls2 pipeline run` sends its updates there."""
    return announced(settings.paths, local_url(host, port)) if serves_pipeline_ui(settings) else nullcontext()


AFTER_UPDATE.append(integrity_after_update)
AROUND_SERVING.append(announce_pipeline_ui)


def serving_app(settings: Settings | None = None):
    """What `mls2 serve` and the demo serve: the RESO Web API and, beside it under /ui, the pipeline
    UI of the embedded engine (not with MLS2_API_BACKEND=databricks: that pipeline is Databricks')."""
    from graphql_odata.main import create_app
    from pipelines.ui.views import mount_pipeline_ui

    settings = settings or load_settings()
    served = create_app(settings)
    if serves_pipeline_ui(settings):
        sync = sync_for_ui if settings.has_qobrix_credentials else None
        mount_pipeline_ui(served, settings, sync, checks_after_update)
    return served


def sync_for_ui(settings: Settings) -> dict:
    """The pipeline UI's sync step: one incremental sync, summed up for its update page."""
    from ingestion.cli import sync_quietly

    report = sync_quietly(settings)
    return {
        "sync": report.sync_id,
        "entities": len(report.entities),
        "records landed": report.records,
        "HTTP calls": report.http_calls,
    }


console = Console(stderr=True)
DEMO_CLIENT = "demo"


@app.command()
def demo(
    properties: Annotated[
        int | None, typer.Option(min=1, help="Sandbox size (default: MLS2_SANDBOX_PROPERTIES, 500).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Sandbox seed (default: MLS2_SANDBOX_SEED, 42).")] = None,
    port: Annotated[int | None, typer.Option(min=0, max=65535, help="API port (default: MLS2_API_PORT, 8000).")] = None,
) -> None:
    """Everything on this machine: sandbox (unless Qobrix is configured) -> sync -> pipeline -> API."""
    # The servers', the sync's and the engine's modules load here, not with every other `mls2` command.
    import uvicorn

    from ingestion.cli import make_client, sync_with_progress
    from ingestion.errors import IngestionError
    from ingestion.sandbox.server import SANDBOX_API_KEY, SANDBOX_API_USER, SandboxServer
    from ingestion.sandbox.world import SandboxWorld
    from pipelines.declaration import DeclarationError
    from pipelines.embedded import PipelineError

    try:
        settings = load_settings()
        api_port = settings.mls2_api_port if port is None else port
        listener = reserve_socket(settings.mls2_api_host, api_port)
        sandbox = None
        if settings.has_qobrix_credentials:
            base_url, user, key = settings.require_qobrix()
            console.print(f"Using Qobrix at {base_url}")
        else:
            world = SandboxWorld(
                seed=settings.mls2_sandbox_seed if seed is None else seed,
                properties=properties or settings.mls2_sandbox_properties,
            )
            sandbox = SandboxServer(world, port=settings.mls2_sandbox_port).start()
            base_url, user, key = sandbox.base_url, SANDBOX_API_USER, SANDBOX_API_KEY
            console.print(
                f"No Qobrix credentials: using the sandbox at {base_url} "
                f"({world.property_count} properties, seed {world.seed})"
            )
        client = make_client(settings, base_url, user, key)
        sync_with_progress(settings, client, entities=None, full_refresh=False, max_properties=None)
        update_with_progress(settings)
        checks_after_update(settings)  # printed; the demo serves either way, so it can be looked into
    except (SettingsError, IngestionError, PipelineError, DeclarationError, OSError) as error:
        console.print(f"[red]demo failed:[/red] {error}")
        raise typer.Exit(1) from None

    api_port = listener.getsockname()[1]
    api = f"http://{settings.mls2_api_host}:{api_port}"
    secret = ClientRegistry(settings.paths.api_clients).add(DEMO_CLIENT, replace=True)
    lines = [
        "",
        f"[bold]Ready.[/bold] The API wants OAuth2 client credentials; the demo registered {DEMO_CLIENT!r}.",
        token_recipe(api, DEMO_CLIENT, secret),
        f'  curl -H "Authorization: Bearer $TOKEN" '
        f"'{api}/odata/Property?$top=5&$select=ListingKey,ListPrice,StandardStatus'",
        f'  curl -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" {api}/graphql '
        """-d '{"query": "{ properties(first: 5) { nodes { ListingKey ListPrice City } } }"}'""",
        f"  {api}/graphql  (GraphiQL in a browser; paste the token into its Headers tab)",
        f"  {api}/docs  (interactive API docs)",
        f"  {api}/ui  (the pipeline UI; add an operator first: mls2 operators add NAME)",
        f"  {api}/health",
        f"Check it as RESO certification would (in another shell): MLS2_DATA_DIR={settings.paths.root} "
        f"MLS2_API_PORT={api_port} mls2 reso check",
    ]
    if sandbox:
        lines += [
            "Change the sandbox's data, then sync and update (in another shell):",
            f"  curl -X POST '{sandbox.url}/_sandbox/advance?updates=5'",
            f"  export QOBRIX_API_BASE_URL={sandbox.base_url} QOBRIX_API_USER={SANDBOX_API_USER} "
            f"QOBRIX_API_KEY={SANDBOX_API_KEY} MLS2_DATA_DIR={settings.paths.root}",
            "  mls2 sync && mls2 pipeline run   (the update runs in this server: /ui shows it as it runs)",
            f"  (or, signed in to {api}/ui: Sync and update)",
        ]
    lines.append("Press Ctrl+C to stop.")
    console.print("\n".join(lines), soft_wrap=True)
    # The UI's Sync and update syncs from the Qobrix the demo synced from (the sandbox, by default).
    qobrix = {"qobrix_api_base_url": base_url, "qobrix_api_user": user, "qobrix_api_key": key}
    served = settings.model_copy(update=qobrix)
    with announce_pipeline_ui(settings, settings.mls2_api_host, api_port):
        uvicorn.Server(uvicorn.Config(serving_app(served), log_level="warning")).run(sockets=[listener])
    if sandbox:
        sandbox.stop()
