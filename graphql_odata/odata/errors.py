"""OData JSON errors: `{"error": {"code", "message", "target", "details"}}` with a 4xx status."""

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

ODATA_VERSION = "4.01"
STATUS_CODES = {
    400: "BadRequest",
    401: "Unauthorized",
    404: "NotFound",
    405: "MethodNotAllowed",
    414: "URITooLong",
    413: "PayloadTooLarge",
    429: "TooManyRequests",
    500: "InternalServerError",
    501: "NotImplemented",
    503: "ServiceUnavailable",
}


class ODataError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        target: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.target = target
        self.headers = headers or {}
        self.code = code or STATUS_CODES.get(status, "Error")

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message, "target": self.target, "details": []}}


async def odata_error_handler(_: Request, error: ODataError) -> Response:
    return JSONResponse(
        error.body(), status_code=error.status, headers={"OData-Version": ODATA_VERSION, **error.headers}
    )


async def http_error_handler(_: Request, error: StarletteHTTPException) -> Response:
    """What the framework answers itself (no such path, a method not allowed) in OData's error shape."""
    message = {404: "no such path; the service document at /odata lists the resources"}.get(
        error.status_code, str(error.detail)
    )
    body = ODataError(error.status_code, message).body()
    headers = {"OData-Version": ODATA_VERSION, **(error.headers or {})}
    return JSONResponse(body, status_code=error.status_code, headers=headers)


async def validation_error_handler(_: Request, error: RequestValidationError) -> Response:
    body = ODataError(400, "the request does not have the shape this path takes").body()
    return JSONResponse(body, status_code=400, headers={"OData-Version": ODATA_VERSION})


async def internal_error_handler(_: Request, error: Exception) -> Response:
    """A defect, not bad input: the OData error shape without internals (the server log has the traceback)."""
    body = ODataError(500, "internal error; the server log has the details").body()
    return JSONResponse(body, status_code=500, headers={"OData-Version": ODATA_VERSION})
