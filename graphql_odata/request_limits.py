"""Limits on what a request may be before any route reads it, answered in OData's error shape."""

from starlette.types import ASGIApp, Receive, Scope, Send

from graphql_odata.odata.errors import ODATA_VERSION, ODataError
from graphql_odata.odata.wire import dumps
from graphql_odata.security.ratelimit import RateLimitUnavailable

MAX_URL_BYTES = 32 * 1024
"""Longer than any query this service accepts (a `$filter` is at most 4,000 characters), short of
where HTTP servers stop reading a request line and answer in their own shape."""


class UrlLengthLimit:
    """Answers a URL longer than MAX_URL_BYTES with 414 before routing."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            length = len(scope.get("raw_path") or scope["path"].encode()) + len(scope.get("query_string", b""))
            if length > MAX_URL_BYTES:
                await _send_error(send, ODataError(414, f"the URL is {length:,} bytes; at most {MAX_URL_BYTES:,}"))
                return
        await self.app(scope, receive, send)


class TokenAttemptLimit:
    """Counts every `/oauth/token` request against its address's budget before the framework reads it:
    a flood of guesses is answered 429 at the door, the cheapest place, so requests for data keep
    their share of the server."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "").removeprefix(scope.get("root_path", ""))
        if scope["type"] == "http" and path == "/oauth/token":
            address = (scope.get("client") or ("unknown", 0))[0]
            try:
                wait = scope["app"].state.security.address_attempt_wait(address)
            except RateLimitUnavailable as error:
                await _send_json(send, 503, {"error": "temporarily_unavailable", "error_description": str(error)},
                                 {"retry-after": "1"})  # fmt: skip
                return
            if wait:
                body = {"error": "slow_down", "error_description": f"too many token requests; retry after {wait:.0f} s"}
                await _send_json(send, 429, body, {"retry-after": f"{wait:.0f}"})
                return
        await self.app(scope, receive, send)


async def _send_json(send: Send, status: int, payload: dict, headers: dict[str, str]) -> None:
    body = dumps(payload)
    fields = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    fields += [(b"cache-control", b"no-store"), *((name.encode(), value.encode()) for name, value in headers.items())]
    await send({"type": "http.response.start", "status": status, "headers": fields})
    await send({"type": "http.response.body", "body": body})


async def _send_error(send: Send, error: ODataError) -> None:
    body = dumps(error.body())
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"odata-version", ODATA_VERSION.encode()),
    ]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
