"""`mls2 serve`: the RESO Web API over the published gold snapshot."""

import os
import socket
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack, suppress
from typing import Annotated

import typer
from rich.console import Console

from conf.settings import Settings, SettingsError, load_settings
from graphql_odata.security.clients import ClientError, ClientRegistry

console = Console(stderr=True)
APP_FACTORY = "graphql_odata.main:create_app"
"""What `mls2 serve` serves, as uvicorn imports it (each worker process imports it again): the
composition root (`conf.cli`) points it at the API with the pipeline UI beside it."""
AROUND_SERVING: list[Callable[[Settings, str, int], AbstractContextManager]] = []
"""What runs around serving, given the host and port served (the composition root adds the pipeline
UI's announcement to `mls2 pipeline run`)."""


def serve(
    port: Annotated[int | None, typer.Option(min=0, max=65535, help="Port (default: MLS2_API_PORT, 8000).")] = None,
    host: Annotated[str | None, typer.Option(help="Interface (default: MLS2_API_HOST, 127.0.0.1).")] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, max=64, help="Server processes (default: MLS2_API_WORKERS, 1).")
    ] = None,
    access_log: Annotated[
        bool | None,
        typer.Option("--access-log/--no-access-log", help="Log each request (default: MLS2_API_ACCESS_LOG, on)."),
    ] = None,
) -> None:
    """Serve gold as a RESO Web API: OData under /odata (OAuth2 bearer tokens from /oauth/token), /health, /docs."""
    # The API's modules load here, not with every other `mls2` command.
    import uvicorn
    from uvicorn.importer import import_from_string

    from graphql_odata.backends.base import BackendUnavailable
    from graphql_odata.http_protocol import HTTP_PROTOCOL

    try:
        overrides = {"mls2_api_workers": workers, "mls2_api_access_log": access_log}
        settings = load_settings(**{name: value for name, value in overrides.items() if value is not None})
        app = import_from_string(APP_FACTORY)(settings)
    except (SettingsError, BackendUnavailable) as error:
        console.print(f"[red]cannot serve:[/red] {error}")
        raise typer.Exit(2) from None
    host = host or settings.mls2_api_host
    try:
        listener = reserve_socket(host, settings.mls2_api_port if port is None else port)
    except OSError as error:
        console.print(f"[red]cannot serve:[/red] {error}")
        raise typer.Exit(2) from None
    port = listener.getsockname()[1]
    console.print(f"RESO Web API on http://{host}:{port}/odata (docs: /docs)")
    if not settings.mls2_api_auth:
        console.print("[yellow]MLS2_API_AUTH=false: /odata answers anyone who can reach this port[/yellow]")
    elif not ClientRegistry(settings.paths.api_clients).clients():
        console.print("No API clients yet: register one with `mls2 clients add NAME`")
    with ExitStack() as around:
        for step in AROUND_SERVING:
            around.enter_context(step(settings, host, port))
        if settings.mls2_api_workers == 1:
            config = uvicorn.Config(app, http=HTTP_PROTOCOL, log_level="info", access_log=settings.mls2_api_access_log)
            with suppress(KeyboardInterrupt):  # Ctrl+C: stopped, as `uvicorn.run` stops
                uvicorn.Server(config).run(sockets=[listener])
            return
        console.print(
            f"{settings.mls2_api_workers} server processes; rate limits shared through {settings.paths.state}"
        )
        os.environ["MLS2_API_WORKERS"] = str(settings.mls2_api_workers)
        listener.close()  # uvicorn's supervisor binds the port (now known, if 0 was asked) for its workers
        uvicorn.run(
            APP_FACTORY,
            factory=True,
            host=host,
            port=port,
            workers=settings.mls2_api_workers,
            http=HTTP_PROTOCOL,
            log_level="info",
            access_log=settings.mls2_api_access_log,
        )


def reserve_socket(host: str, port: int) -> socket.socket:
    """The API's socket, bound before anything runs: a taken port fails at once (the demo's not after
    its sync and pipeline), and nothing else can take it meanwhile. It listens only once the server
    starts, so a request before then is refused rather than left waiting."""
    # As uvicorn binds: IPv6 for an address with a colon, else IPv4 (`localhost` is 127.0.0.1).
    reserved = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        reserved.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        reserved.bind((host, port))
    except socket.gaierror as error:
        reserved.close()
        raise OSError(f"the API host {host!r} cannot be resolved ({error}); set MLS2_API_HOST") from None
    except OSError as error:
        reserved.close()
        raise OSError(
            f"the API port {host}:{port} is not free ({error.strerror}); set MLS2_API_PORT or --port"
        ) from None
    return reserved


clients_app = typer.Typer(
    help="API clients (OAuth2 client credentials): register, list, remove. Secrets are shown once.",
    no_args_is_help=True,
)


def _registry() -> ClientRegistry:
    return ClientRegistry(load_settings().paths.api_clients)


@clients_app.command("add")
def add_client(
    client_id: Annotated[str, typer.Argument(help="A name for the client: letters, digits, '.', '_', '-'.")],
    requests_per_minute: Annotated[
        int | None, typer.Option(min=1, help="Its rate limit (default: MLS2_API_RATE_LIMIT_PER_MINUTE).")
    ] = None,
    rotate: Annotated[
        bool, typer.Option(help="Give an existing client a new secret (the old one stops working).")
    ] = False,
) -> None:
    """Register a client and print its secret (once) with the request that turns it into a token."""
    settings = load_settings()
    try:
        secret = ClientRegistry(settings.paths.api_clients).add(client_id, requests_per_minute, replace=rotate)
    except ClientError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None
    console.print(f"client_id:     {client_id}\nclient_secret: {secret}   (shown once; keep it safe)", soft_wrap=True)
    api = f"http://{settings.mls2_api_host}:{settings.mls2_api_port}"
    console.print(token_recipe(api, client_id, secret), soft_wrap=True)


@clients_app.command("list")
def list_clients() -> None:
    """The registered clients and their rate limits (never their secrets)."""
    for client in _registry().clients():
        limit = client.requests_per_minute or f"default ({load_settings().mls2_api_rate_limit_per_minute})"
        console.print(f"{client.client_id}\t{limit} requests/minute")


@clients_app.command("remove")
def remove_client(client_id: Annotated[str, typer.Argument(help="The client to remove.")]) -> None:
    """Remove a client: its tokens stop working at once."""
    try:
        _registry().remove(client_id)
    except ClientError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None
    console.print(f"removed {client_id}")


def token_recipe(api: str, client_id: str, secret: str) -> str:
    read_token = "python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])'"
    return (
        "Get a token, then call the API with it:\n"
        f"  TOKEN=$(curl -s -d grant_type=client_credentials -d client_id={client_id} "
        f"-d client_secret={secret} {api}/oauth/token | {read_token})\n"
        f"  curl -H \"Authorization: Bearer $TOKEN\" '{api}/odata/Property?$top=5'"
    )
