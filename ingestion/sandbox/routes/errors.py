"""Errors as Qobrix answers them: `{"errors": [...]}` with the status, whatever raised them."""

import orjson
from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException


class QobrixHTTPError(Exception):
    """Raised by a route to answer with Qobrix's error envelope."""

    def __init__(self, status: int, *messages: str, headers: dict | None = None) -> None:
        self.status = status
        self.messages = list(messages)
        self.headers = headers or {}


def error_response(status: int, *messages: str, headers: dict | None = None) -> Response:
    return Response(
        orjson.dumps({"errors": list(messages)}), status_code=status, media_type="application/json", headers=headers
    )


async def _qobrix_error(_: Request, error: QobrixHTTPError) -> Response:
    return error_response(error.status, *error.messages, headers=error.headers)


async def _http_error(_: Request, error: StarletteHTTPException) -> Response:
    """Unknown paths and methods (raised by routing itself) get the envelope too."""
    return error_response(error.status_code, str(error.detail))


async def _validation_error(_: Request, error: RequestValidationError) -> Response:
    """FastAPI's 422 for a bad admin parameter or body becomes Qobrix's 400."""
    messages = [f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in error.errors()]
    return error_response(400, *messages)


ERROR_HANDLERS = {
    QobrixHTTPError: _qobrix_error,
    StarletteHTTPException: _http_error,
    RequestValidationError: _validation_error,
}
"""The app's exception handlers (`FastAPI(exception_handlers=...)`)."""
