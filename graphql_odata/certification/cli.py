"""`mls2 reso check`: run the certification self-check against a RESO server and report it."""

import json
from collections import Counter
from pathlib import Path
from typing import Annotated
from urllib.parse import urljoin, urlsplit

import typer
from rich.console import Console
from rich.table import Table

from conf.data_dictionary import data_dictionary
from conf.settings import SettingsError, load_settings
from graphql_odata.certification.check import run_check
from graphql_odata.certification.report import Report
from graphql_odata.certification.server import ResoServer, ServerError
from graphql_odata.security.clients import ClientError, ClientRegistry

CSDL_SCHEMAS = Path(__file__).with_name("csdl")
CHECK_CLIENT = "reso-check"
CHECK_RATE_LIMIT = 100_000
"""Requests a minute the local check's own client may make: a check pages every resource four ways."""

console = Console(stderr=True)
reso_app = typer.Typer(
    help="RESO certification: check a server as RESO's Data Dictionary 2.0 tests do.", no_args_is_help=True
)


def _local_server(page_timeout: float) -> tuple[ResoServer, Path]:
    """This product's API (MLS2_API_HOST:MLS2_API_PORT), signed in as a client the check registers."""
    settings = load_settings()
    api = f"http://{settings.mls2_api_host}:{settings.mls2_api_port}"
    secret = ClientRegistry(settings.paths.api_clients).add(CHECK_CLIENT, CHECK_RATE_LIMIT, replace=True)
    server = ResoServer.with_client_credentials(
        f"{api}/odata", f"{api}/oauth/token", CHECK_CLIENT, secret, timeout=page_timeout
    )
    return server, settings.paths.root / "reports" / "reso-check.json"


def _summary(report: Report) -> Table:
    table = Table(title=f"RESO Data Dictionary {report.data_dictionary_version} self-check: {report.service_root}")
    table.add_column("severity")
    table.add_column("rule")
    table.add_column("count", justify="right")
    for (severity, rule), count in sorted(Counter((f.severity, f.rule) for f in report.findings).items()):
        table.add_row(severity, rule, str(count))
    return table


@reso_app.command("check")
def check(
    url: Annotated[
        str | None,
        typer.Option(
            help="Service root of any RESO Web API, e.g. https://api.example.com/odata. "
            "Default: this product's API at MLS2_API_HOST:MLS2_API_PORT, signed in as a client "
            f"named {CHECK_CLIENT!r} that the check registers."
        ),
    ] = None,
    token: Annotated[str | None, typer.Option(envvar="MLS2_RESO_TOKEN", help="Bearer token for --url.")] = None,
    client_id: Annotated[
        str | None, typer.Option(envvar="MLS2_RESO_CLIENT_ID", help="OAuth2 client id for --url.")
    ] = None,
    client_secret: Annotated[
        str | None, typer.Option(envvar="MLS2_RESO_CLIENT_SECRET", help="OAuth2 client secret for --url.")
    ] = None,
    token_url: Annotated[
        str | None,
        typer.Option(help="OAuth2 token endpoint (client credentials). Default: /oauth/token on --url's host."),
    ] = None,
    page_size: Annotated[int, typer.Option(min=1, max=10_000, help="Records per page when replicating.")] = 1000,
    report_path: Annotated[
        Path | None,
        typer.Option(
            "--report", help="Where to write the JSON report. Default: MLS2_DATA_DIR/reports/reso-check.json."
        ),
    ] = None,
    csdl_schemas: Annotated[
        Path,
        typer.Option(
            envvar="MLS2_CSDL_SCHEMAS",
            help="Folder holding the OASIS CSDL schemas (edmx.xsd, edm.xsd); `make csdl-schemas` fetches them.",
        ),
    ] = CSDL_SCHEMAS,
    timeout: Annotated[float, typer.Option(min=1, help="Seconds to wait for one answer.")] = 60.0,
) -> None:
    """Check a RESO server as RESO's certification tools do, and report failures, variations,
    warnings and notes.

    It reads $metadata (against the CSDL schemas and Data Dictionary 2.0: types, lookup
    annotations, lengths, synonyms, navigation, the Lookup resource), scans local names for
    variations of DD names, replicates every resource by nextLink, $top/$skip and by
    ModificationTimestamp up and down against $count, and validates every record against a JSON
    schema built from the metadata. Exit code 0: no failure and no variation; 1: some; 2: the
    check could not run (settings, credentials, an unreachable server)."""
    try:
        if url is None:
            server, default_report = _local_server(timeout)
        else:
            root = url.rstrip("/")
            if not urlsplit(root).scheme.startswith("http") or not urlsplit(root).netloc:
                raise SettingsError(f"--url {url!r} is not an http(s) URL of a service root")
            default_report = None
            if token:
                server = ResoServer(root, token, timeout=timeout)
            elif client_id and client_secret:
                endpoint = token_url or urljoin(root + "/", "/oauth/token")
                server = ResoServer.with_client_credentials(root, endpoint, client_id, client_secret, timeout=timeout)
            else:
                raise SettingsError("--url needs --token, or --client-id and --client-secret")
        path = report_path or default_report or load_settings().paths.root / "reports" / "reso-check.json"
        with console.status("checking") as status:
            report = run_check(
                server,
                data_dictionary(),
                csdl_schemas,
                page_size=page_size,
                progress=lambda step: status.update(f"checking {step}"),
            )
    except (SettingsError, ServerError, ClientError) as error:
        console.print(f"[red]cannot check:[/red] {error}")
        raise typer.Exit(2) from None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report.to_json(), indent=1), encoding="utf-8")
    console.print(_summary(report))
    for finding in report.findings:
        if finding.severity in ("failure", "variation"):
            where = ".".join(part for part in (finding.resource, finding.field) if part)
            console.print(f"[red]{finding.severity}[/red] {finding.rule} {where}: {finding.message}", soft_wrap=True)
    counts = report.counts()
    verdict = "[green]passed[/green]" if report.passed else "[red]not passed[/red]"
    console.print(
        f"{verdict}: {counts['failure']} failures, {counts['variation']} variations, {counts['warning']} warnings, "
        f"{counts['note']} notes; {server.requests_sent} requests. Report: {path}"
    )
    raise typer.Exit(0 if report.passed else 1)
