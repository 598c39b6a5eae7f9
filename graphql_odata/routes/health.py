"""Liveness and readiness: is there a snapshot to serve, which one, and how old."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from graphql_odata.backends.base import BackendUnavailable
from graphql_odata.deps import BackendDep

router = APIRouter(tags=["Health"])


@router.get("/health", summary="Backend reachable, snapshot version and age")
def health(backend: BackendDep) -> JSONResponse:
    try:
        return JSONResponse({"status": "ok", **backend.health()})
    except BackendUnavailable as error:
        return JSONResponse({"status": "unavailable", "reason": str(error)}, status_code=503)
