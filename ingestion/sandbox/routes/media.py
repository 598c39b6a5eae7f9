"""Media by category: the photos, documents or floor plans of one property or project."""

from fastapi import APIRouter, Request, Response

from ingestion.sandbox.routes.errors import QobrixHTTPError
from ingestion.sandbox.routes.fault_injection import fault_before, respond
from ingestion.sandbox.routes.state import Sandbox
from ingestion.sandbox.world import NotFound

router = APIRouter(prefix="/api/v2")


@router.get(
    "/media/by-category/{category}/{resource}/{record_id}", summary="Media of a property or project by category"
)
def media_by_category(category: str, resource: str, record_id: str, request: Request, sandbox: Sandbox) -> Response:
    sandbox.authenticate(request)
    faults = sandbox.shared.faults
    kind = faults.draw()
    fault_before(kind, faults)
    try:
        items = sandbox.shared.world.media_by_category(category, resource, record_id)
    except NotFound as error:
        raise QobrixHTTPError(404, str(error)) from None
    return respond(kind, {"data": items})
