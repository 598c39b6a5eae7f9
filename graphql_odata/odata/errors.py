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


def error_response(error: ODataError) -> JSONResponse:
    """`error` as the response every OData error is: its JSON body, status, headers and `OData-Version`."""
    return JSONResponse(
        error.body(), status_code=error.status, headers={"OData-Version": ODATA_VERSION, **error.headers}
    )


async def odata_error_handler(_: Request, error: ODataError) -> Response:
    return error_response(error)


async def http_error_handler(_: Request, error: StarletteHTTPException) -> Response:
    """What the framework answers itself (no such path, a method not allowed) in OData's error shape."""
    message = {404: "no such path; the service document at /odata lists the resources"}.get(
        error.status_code, str(error.detail)
    )
    return error_response(ODataError(error.status_code, message, headers=dict(error.headers or {})))


async def validation_error_handler(_: Request, error: RequestValidationError) -> Response:
    return error_response(ODataError(400, "the request does not have the shape this path takes"))


async def internal_error_handler(_: Request, error: Exception) -> Response:
    """A defect, not bad input: the OData error shape without internals (the server log has the traceback)."""
    return error_response(ODataError(500, "internal error; the server log has the details"))
