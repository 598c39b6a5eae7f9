"""`/graphql`: queries by POST (JSON or `application/graphql`) or GET (`?query=`), behind the same
bearer tokens and rate limits as `/odata`; GraphiQL for a browser that asks for HTML."""

from datetime import UTC, datetime

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from graphql_odata.graphql.execute import run_query
from graphql_odata.graphql.graphiql import INSTALL_HINT, asset, assets_installed, graphiql_page
from graphql_odata.graphql.resolve import RequestContext
from graphql_odata.odata.errors import ODataError

router = APIRouter(tags=["GraphQL"])

MAX_BODY_BYTES = 512 * 1024
"""A query is at most 20,000 characters; the rest is room for variables (long `_in` lists)."""


def _json(status: int, body: dict, headers: dict | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


def _refusal(error: ODataError) -> Response:
    code = {401: "UNAUTHENTICATED", 429: "RATE_LIMITED", 503: "SERVICE_UNAVAILABLE"}.get(error.status, "BAD_REQUEST")
    return _json(error.status, {"errors": [{"message": error.message, "extensions": {"code": code}}]}, error.headers)


def _bad_request(message: str, status: int = 400) -> Response:
    return _json(status, {"errors": [{"message": message, "extensions": {"code": "BAD_REQUEST"}}]})


def _refused(request: Request) -> Response | None:
    """The refusal of a request without a valid token, or over its client's rate limit."""
    try:
        request.app.state.security.authorize(request.headers.get("authorization"))
    except ODataError as error:
        return _refusal(error)
    return None


async def _answer(request: Request, query: object, variables: object, operation_name: object) -> Response:
    context = RequestContext(
        backend=request.app.state.backend,
        cursor_key=request.app.state.security.skiptoken_key,
        now=datetime.now(UTC),
    )
    status, body = await run_in_threadpool(run_query, query, variables, operation_name, context)
    return _json(status, body)


@router.get("/graphql", summary="GraphQL query by GET (?query=, ?variables=), or GraphiQL in a browser")
async def graphql_get(request: Request) -> Response:
    parameters = request.query_params
    if "query" not in parameters:
        if "text/html" in request.headers.get("accept", ""):
            page = graphiql_page(
                str(request.url_for("graphql_post")),
                str(request.url_for("graphiql_asset", name="graphiql.min.js")).rsplit("/", 1)[0],
                token_required=request.app.state.settings.mls2_api_auth,
            )
            return HTMLResponse(page, status_code=200 if assets_installed() else 503)
        return _bad_request(
            "no query: GET /graphql?query=... or POST a JSON body; open /graphql in a browser for GraphiQL"
        )
    refusal = _refused(request)
    if refusal is not None:
        return refusal
    try:
        variables = orjson.loads(parameters["variables"]) if parameters.get("variables") else None
    except orjson.JSONDecodeError:
        return _bad_request("variables is not JSON")
    return await _answer(request, parameters["query"], variables, parameters.get("operationName"))


@router.get("/graphql/assets/{name}", name="graphiql_asset", include_in_schema=False)
async def graphiql_asset(name: str) -> Response:
    found = asset(name)
    if found is None:
        return Response(
            INSTALL_HINT if not assets_installed() else "no such file", status_code=404, media_type="text/plain"
        )
    content, media_type = found
    return Response(content, media_type=media_type, headers={"Cache-Control": "public, max-age=86400"})


@router.post("/graphql", name="graphql_post", summary="GraphQL query: {query, variables, operationName}")
async def graphql_post(request: Request) -> Response:
    refusal = _refused(request)  # before the body is read: a caller without a token sends it for nothing
    if refusal is not None:
        return refusal
    too_large = _bad_request(f"the request body is larger than {MAX_BODY_BYTES:,} bytes", 413)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return too_large
    received = bytearray()
    async for chunk in request.stream():  # a chunked body declares no length: count it as it comes
        received += chunk
        if len(received) > MAX_BODY_BYTES:
            return too_large
    body = bytes(received)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/graphql":
        try:
            return await _answer(request, body.decode(), None, None)
        except UnicodeDecodeError:
            return _bad_request("the query is not UTF-8 text")
    if kind not in ("application/json", ""):
        return _bad_request(f"send application/json or application/graphql, not {kind}", 415)
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return _bad_request("the request body is not JSON")
    if not isinstance(payload, dict):
        return _bad_request('the request body must be a JSON object: {"query": "..."}')
    return await _answer(request, payload.get("query"), payload.get("variables"), payload.get("operationName"))
