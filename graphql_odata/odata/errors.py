"""OData JSON errors: `{"error": {"code", "message", "target", "details"}}` with a 4xx status."""

from fastapi import Request, Response
from fastapi.responses import JSONResponse

ODATA_VERSION = "4.01"
STATUS_CODES = {
    400: "BadRequest",
    401: "Unauthorized",
    404: "NotFound",
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


async def internal_error_handler(_: Request, error: Exception) -> Response:
    """A defect, not bad input: the OData error shape without internals (the server log has the traceback)."""
    body = ODataError(500, "internal error; the server log has the details").body()
    return JSONResponse(body, status_code=500, headers={"OData-Version": ODATA_VERSION})
