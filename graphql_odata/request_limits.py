"""Limits on what a request may be before any route reads it, answered in the shape of its endpoint
(OData's errors; OAuth2's for `/oauth/token`)."""

from starlette.types import ASGIApp, Receive, Scope, Send

from graphql_odata.odata.errors import ODataError, error_response
from graphql_odata.routes.oauth import attempt_refusal

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
                refusal = error_response(ODataError(414, f"the URL is {length:,} bytes; at most {MAX_URL_BYTES:,}"))
                await refusal(scope, receive, send)
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
            refusal = attempt_refusal(lambda: scope["app"].state.security.address_attempt_wait(address))
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)
