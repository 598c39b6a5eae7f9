"""Entity routes: list (paged, searched, sorted) and read one record, for every entity the sandbox serves."""

from dataclasses import asdict

import orjson
from fastapi import APIRouter, Request, Response

from ingestion.sandbox.generators.entities import ENTITIES
from ingestion.sandbox.routes.errors import QobrixHTTPError
from ingestion.sandbox.routes.fault_injection import fault_before, respond
from ingestion.sandbox.routes.state import Sandbox, SandboxState
from ingestion.sandbox.search import SearchError
from ingestion.sandbox.world import Changes, NotFound

MAX_LIMIT = 100
CHURN = {"properties": Changes(updates=2, creates=1), "contacts": Changes(updates=1)}
"""The small change a client sees land while it pages (`churn_every`)."""

router = APIRouter(prefix="/api/v2")


def _flag(name: str, value: str | None, default: bool) -> bool:
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise QobrixHTTPError(400, f"{name}: must be true or false, got {value!r}")


def _positive_int(name: str, value: str | None, default: int) -> int:
    if value is None:
        return default
    if not value.strip().isdigit() or int(value) < 1:
        raise QobrixHTTPError(400, f"{name}: must be a positive integer, got {value!r}")
    return int(value)


def pagination(count: int, page: int, limit: int) -> dict:
    page_count = max(1, -(-count // limit))
    return {
        "page_count": page_count,
        "current_page": page,
        "has_next_page": page < page_count,
        "has_prev_page": page > 1,
        "count": count,
        "limit": limit,
    }


def _served_entity(path: str) -> str:
    """The entity a path names; checked before credentials, so an unknown path is a 404 either way."""
    if path not in ENTITIES:
        raise QobrixHTTPError(404, f"Not Found: /api/v2/{path}")
    return path


def _list_entity(sandbox: SandboxState, entity: str, request: Request) -> Response:
    sandbox.authenticate(request)
    shared = sandbox.shared
    world, faults = shared.world, shared.faults
    params = request.query_params
    page = _positive_int("page", params.get("page"), 1)
    limit = _positive_int("limit", params.get("limit"), 10)
    if limit > MAX_LIMIT:
        raise QobrixHTTPError(400, f"limit: must be at most {MAX_LIMIT}")
    trashed = _flag("trashed", params.get("trashed"), False)
    expand = _flag("expand", params.get("expand"), True)
    media = _flag("media", params.get("media"), True)
    sort = tuple(params.getlist("sort[]"))
    kind = faults.draw()
    fault_before(kind, faults)
    if faults.churn_due():
        shared.advance(changes={entity: asdict(change) for entity, change in CHURN.items()})
    with world.snapshot():
        try:
            indices, count = world.list_indices(
                entity, page=page, limit=limit, search=params.get("search"), sort=sort, trashed=trashed
            )
        except SearchError as error:
            raise QobrixHTTPError(400, f"search: {error}") from None
        records = [
            orjson.dumps(faults.defect(entity, world.present(entity, i, expand=expand, media=media)))
            if faults.is_defective(entity, world.generator.id(entity, i))
            else world.render(entity, i, expand=expand, media=media)
            for i in indices
        ]
    body = b'{"data":[' + b",".join(records) + b'],"pagination":' + orjson.dumps(pagination(count, page, limit)) + b"}"
    return respond(kind, body)


def _read_entity(sandbox: SandboxState, entity: str, record_id: str, request: Request) -> Response:
    sandbox.authenticate(request)
    world, faults = sandbox.shared.world, sandbox.shared.faults
    params = request.query_params
    trashed = _flag("trashed", params.get("trashed"), False)
    expand = _flag("expand", params.get("expand"), True)
    media = _flag("media", params.get("media"), True)
    kind = faults.draw()
    fault_before(kind, faults)
    try:
        record = world.get(entity, record_id, trashed=trashed, expand=expand, media=media)
    except NotFound as error:
        raise QobrixHTTPError(404, str(error)) from None
    return respond(kind, {"data": faults.defect(entity, record)})


# Media categories first: `media/categories` would otherwise match `/{path}/{record_id}`.
@router.get("/media/categories", summary="List media categories")
def list_media_categories(request: Request, sandbox: Sandbox) -> Response:
    return _list_entity(sandbox, "media/categories", request)


@router.get("/media/categories/{record_id}", summary="Read one media category")
def read_media_category(record_id: str, request: Request, sandbox: Sandbox) -> Response:
    return _read_entity(sandbox, "media/categories", record_id, request)


@router.get("/{path}", summary="List records of an entity")
def list_records(path: str, request: Request, sandbox: Sandbox) -> Response:
    return _list_entity(sandbox, _served_entity(path), request)


@router.get("/{path}/{record_id}", summary="Read one record")
def read_record(path: str, record_id: str, request: Request, sandbox: Sandbox) -> Response:
    return _read_entity(sandbox, _served_entity(path), record_id, request)
