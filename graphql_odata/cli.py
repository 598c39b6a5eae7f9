"""`mls2 serve`: the RESO Web API over the published gold snapshot."""

from typing import Annotated

import typer
import uvicorn
from rich.console import Console

from conf.settings import load_settings
from graphql_odata.main import create_app

console = Console(stderr=True)


def serve(
    port: Annotated[int | None, typer.Option(min=0, max=65535, help="Port (default: MLS2_API_PORT, 8000).")] = None,
    host: Annotated[str | None, typer.Option(help="Interface (default: MLS2_API_HOST, 127.0.0.1).")] = None,
) -> None:
    """Serve gold as a RESO Web API: OData under /odata, health at /health, docs at /docs."""
    settings = load_settings()
    host = host or settings.mls2_api_host
    port = settings.mls2_api_port if port is None else port
    console.print(f"RESO Web API on http://{host}:{port}/odata (docs: /docs)")
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")
