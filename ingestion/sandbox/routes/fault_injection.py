"""Transient faults as a client meets them: error statuses, throttling, stalls, cut and malformed bodies."""

import logging

import orjson
from fastapi import Response

from ingestion.sandbox.faults import Faults
from ingestion.sandbox.routes.errors import QobrixHTTPError

CUT_MESSAGE = "sandbox fault: connection cut mid-body"


class CutResponse(Response):
    """Announces the whole body, sends half, then drops the connection."""

    async def __call__(self, scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": self.body[: len(self.body) // 2], "more_body": True})
        raise ConnectionAbortedError(CUT_MESSAGE)


class _QuietCuts(logging.Filter):
    """Keep uvicorn from logging the connections the sandbox cuts on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and CUT_MESSAGE in str(record.exc_info[1]))


logging.getLogger("uvicorn.error").addFilter(_QuietCuts())


def fault_before(kind: str | None, faults: Faults) -> None:
    """Faults that replace the answer (error statuses, 429) or delay it (slow), before any work."""
    if kind in ("500", "502", "503"):
        raise QobrixHTTPError(int(kind), f"sandbox fault: HTTP {kind}")
    if kind == "429":
        seconds = faults.config.retry_after
        retry_after = str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"
        raise QobrixHTTPError(429, "Too Many Requests", headers={"Retry-After": retry_after})
    if kind == "slow":
        faults.stall()


def respond(kind: str | None, payload: dict | bytes) -> Response:
    """The JSON answer, or its damaged form when the request drew a cut or malformed body."""
    body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    if kind == "cut":
        return CutResponse(body, media_type="application/json")
    if kind == "malformed":
        return Response(body[: max(1, len(body) // 3)] + b'{"', media_type="application/json")
    return Response(body, media_type="application/json")
