"""GraphiQL, served from this machine: the npm packages' built files (`make graphiql-assets` puts them
in `assets/`), never a CDN, so the page works with no internet."""

import html
from pathlib import Path

import orjson

ASSETS = Path(__file__).with_name("assets")
ASSET_TYPES = {
    "graphiql.min.js": "text/javascript",
    "graphiql.min.css": "text/css",
    "react.production.min.js": "text/javascript",
    "react-dom.production.min.js": "text/javascript",
}
FIRST_QUERY = """{
  properties(first: 5, orderBy: [{ModificationTimestamp: desc}]) {
    totalCount
    nodes {
      ListingKey
      ListPrice
      City
      StandardStatus
      listAgent { MemberFullName }
    }
  }
}
"""
INSTALL_HINT = "GraphiQL's files are not installed here: run `make graphiql-assets` (npm) and reload."


def asset(name: str) -> tuple[bytes, str] | None:
    """One of GraphiQL's files and its media type; None for a name that is not one, or is missing."""
    if name not in ASSET_TYPES or not (ASSETS / name).is_file():
        return None
    return (ASSETS / name).read_bytes(), ASSET_TYPES[name]


def assets_installed() -> bool:
    return all((ASSETS / name).is_file() for name in ASSET_TYPES)


def graphiql_page(endpoint: str, assets_url: str, *, token_required: bool) -> str:
    if not assets_installed():
        return f"<!doctype html><title>GraphiQL</title><p>{html.escape(INSTALL_HINT)}</p>"
    headers = '{\n  "Authorization": "Bearer <access token from POST /oauth/token>"\n}' if token_required else ""
    settings = orjson.dumps({"url": endpoint, "headers": headers, "query": FIRST_QUERY}).decode().replace("</", "<\\/")
    base = html.escape(assets_url.rstrip("/"))
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>MLS 2.0 GraphQL</title>
<link rel="stylesheet" href="{base}/graphiql.min.css">
<style>html, body, #graphiql {{ height: 100%; margin: 0; }}</style>
</head>
<body>
<div id="graphiql">Loading GraphiQL...</div>
<script src="{base}/react.production.min.js"></script>
<script src="{base}/react-dom.production.min.js"></script>
<script src="{base}/graphiql.min.js"></script>
<script>
const settings = {settings};
const fetcher = GraphiQL.createFetcher({{ url: settings.url }});
ReactDOM.createRoot(document.getElementById("graphiql")).render(
  React.createElement(GraphiQL, {{
    fetcher,
    defaultHeaders: settings.headers,
    shouldPersistHeaders: true,
    defaultQuery: settings.query,
  }}),
);
</script>
</body>
</html>
"""
