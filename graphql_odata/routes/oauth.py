"""`POST /oauth/token`: OAuth2 client credentials (RFC 6749 section 4.4) -> an expiring bearer token."""

import base64
import binascii
from collections.abc import Callable
from urllib.parse import parse_qsl, unquote

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from graphql_odata.deps import SecurityDep
from graphql_odata.security.clients import CLIENT_ID
from graphql_odata.security.ratelimit import RateLimitUnavailable

router = APIRouter(tags=["OAuth2"])
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
UNKNOWN_CLIENT = "unknown client or wrong secret"
MAX_FORM_BYTES = 4096
"""A client credentials form is a few hundred bytes; a larger body is refused unread."""


class FormTooLarge(ValueError):
    """The body is longer than MAX_FORM_BYTES."""


async def _form_body(request: Request) -> bytes:
    """The request body, read no further than MAX_FORM_BYTES."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        raise FormTooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise FormTooLarge
    return bytes(body)


def oauth_error(status: int, error: str, description: str, headers: dict | None = None) -> JSONResponse:
    """An OAuth2 error response (RFC 6749 section 5.2), never cached."""
    return JSONResponse(
        {"error": error, "error_description": description}, status_code=status, headers={**NO_STORE, **(headers or {})}
    )


def _invalid_client(description: str) -> JSONResponse:
    return oauth_error(401, "invalid_client", description, {"WWW-Authenticate": 'Basic realm="mls2"'})


def attempt_refusal(wait: Callable[[], float]) -> JSONResponse | None:
    """The answer to a token request over its attempt budget (`wait` counts the attempt and says how
    long until the next may be checked), or to one whose budget cannot be kept; None: go on."""
    try:
        seconds = wait()
    except RateLimitUnavailable as error:
        return oauth_error(503, "temporarily_unavailable", str(error), {"Retry-After": "1"})
    if seconds:
        return oauth_error(
            429, "slow_down", f"too many token requests; retry after {seconds:.0f} s", {"Retry-After": f"{seconds:.0f}"}
        )
    return None


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    scheme, _, encoded = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        client_id, _, secret = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return ("", "")
    return unquote(client_id), unquote(secret)


@router.post(
    "/oauth/token",
    summary="Exchange client credentials for a bearer token",
    description="Form fields `grant_type=client_credentials`, `client_id`, `client_secret` "
    "(or HTTP Basic with the client id and secret). Returns `access_token`, `token_type`, `expires_in`.",
)
async def token(request: Request, security: SecurityDep) -> JSONResponse:
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return oauth_error(400, "invalid_request", "send the form as application/x-www-form-urlencoded")
    try:
        form = dict(parse_qsl((await _form_body(request)).decode(), keep_blank_values=True, max_num_fields=10))
    except FormTooLarge:
        return oauth_error(413, "invalid_request", f"the form is larger than {MAX_FORM_BYTES} bytes")
    except (UnicodeDecodeError, ValueError):
        return oauth_error(400, "invalid_request", "the form could not be read")
    if not form.get("grant_type"):
        return oauth_error(400, "invalid_request", "grant_type is required (client_credentials)")
    if form.get("grant_type") != "client_credentials":
        return oauth_error(400, "unsupported_grant_type", "only grant_type=client_credentials is supported")
    credentials = _basic_credentials(request.headers.get("authorization")) or (
        form.get("client_id", ""),
        form.get("client_secret", ""),
    )
    if not all(credentials):
        return _invalid_client("client_id and client_secret are required")
    if not CLIENT_ID.match(credentials[0]):
        return _invalid_client(UNKNOWN_CLIENT)
    address = request.client.host if request.client else "unknown"
    refusal = attempt_refusal(lambda: security.token_attempt_wait(credentials[0], address))
    if refusal is not None:
        return refusal
    client = await run_in_threadpool(security.registry.verify, *credentials)
    if client is None:
        return _invalid_client(UNKNOWN_CLIENT)
    access_token, lifetime = security.issuer.issue(client.client_id, client.generation)
    return JSONResponse(
        {"access_token": access_token, "token_type": "Bearer", "expires_in": lifetime}, headers=NO_STORE
    )
