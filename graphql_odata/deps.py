"""Shared needs of the routes, as `Annotated` dependencies: routes never open connections themselves.

They are `async` though they await nothing: FastAPI runs a plain `def` dependency on its thread
pool, a hop per dependency per request (measured: a sizeable share of a key lookup's time over HTTP).
"""

from typing import Annotated

from fastapi import Depends, Request

from graphql_odata.backends.base import Backend
from graphql_odata.security.clients import ApiClient
from graphql_odata.security.guard import Security


async def get_backend(request: Request) -> Backend:
    return request.app.state.backend


BackendDep = Annotated[Backend, Depends(get_backend)]


async def get_security(request: Request) -> Security:
    return request.app.state.security


async def require_client(request: Request) -> ApiClient | None:
    """Every /odata request: the caller's bearer token checked, and its rate limit counted."""
    security: Security = request.app.state.security
    return security.authorize(request.headers.get("authorization"))


SecurityDep = Annotated[Security, Depends(get_security)]
