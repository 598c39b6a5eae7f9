"""The sandbox's HTTP face: the Qobrix API v2 routes the product uses, plus admin routes.

Admin routes live under `/_sandbox` (no Qobrix auth) so tests, benchmarks and the
demo can move sandbox time forward.
"""

import threading
import time
from typing import Annotated

import orjson
import uvicorn
from fastapi import FastAPI, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ingestion.sandbox.world import SandboxWorld

SANDBOX_API_USER = "sandbox-user"
SANDBOX_API_KEY = "sandbox-key"
MAX_LIMIT = 100


class QobrixHTTPError(Exception):
    def __init__(self, status: int, *messages: str) -> None:
        self.status = status
        self.messages = list(messages)


def json_response(payload: object, status: int = 200) -> Response:
    """JSON as Qobrix sends it, serialised with orjson (the sandbox's hot path)."""
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json")


def _error(status: int, *messages: str) -> Response:
    return json_response({"errors": list(messages)}, status)


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


def create_app(world: SandboxWorld, *, api_user: str = SANDBOX_API_USER, api_key: str = SANDBOX_API_KEY) -> FastAPI:
    app = FastAPI(title="Qobrix sandbox", docs_url="/_sandbox/docs", openapi_url="/_sandbox/openapi.json")

    @app.exception_handler(QobrixHTTPError)
    async def _qobrix_error(_: Request, error: QobrixHTTPError) -> Response:
        return _error(error.status, *error.messages)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, error: StarletteHTTPException) -> Response:
        return _error(error.status_code, str(error.detail))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, error: RequestValidationError) -> Response:
        messages = [f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in error.errors()]
        return _error(400, *messages)

    def authenticate(user: str | None, key: str | None) -> None:
        if user != api_user or key != api_key:
            raise QobrixHTTPError(401, "Unauthorized: missing or invalid X-Api-User / X-Api-Key")

    @app.get("/api/v2/properties")
    def list_properties(
        x_api_user: Annotated[str | None, Header()] = None,
        x_api_key: Annotated[str | None, Header()] = None,
        page: Annotated[int, Query(ge=1)] = 1,
        limit: Annotated[int, Query(ge=1)] = 10,
    ) -> Response:
        authenticate(x_api_user, x_api_key)
        if limit > MAX_LIMIT:
            raise QobrixHTTPError(400, f"limit: must be at most {MAX_LIMIT}")
        records = world.properties_page(page, limit)
        return json_response({"data": records, "pagination": pagination(world.property_count, page, limit)})

    @app.post("/_sandbox/advance")
    def advance(updates: Annotated[int, Query(ge=0, le=100_000)] = 10) -> dict:
        report = world.advance(updates=updates)
        return {"step": report.step, "clock": report.clock.isoformat(), "updated": report.updated}

    @app.get("/_sandbox/state")
    def state() -> dict:
        return {
            "seed": world.seed,
            "properties": world.property_count,
            "step": world.step,
            "clock": world.clock.isoformat(),
        }

    return app


class BackgroundServer:
    """An ASGI app served by uvicorn on a background thread; port 0 picks a free port."""

    def __init__(self, app: FastAPI, *, host: str = "127.0.0.1", port: int = 0, name: str = "server") -> None:
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name=name, daemon=True)
        self.host = host

    @property
    def port(self) -> int:
        return self._server.servers[0].sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> "BackgroundServer":
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise OSError(f"{self._thread.name} did not start on {self.host} (port taken?)")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> "BackgroundServer":
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


class SandboxServer(BackgroundServer):
    """The sandbox on a background thread (tests, benchmarks, the demo)."""

    def __init__(self, world: SandboxWorld, *, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(create_app(world), host=host, port=port, name="qobrix-sandbox")
        self.world = world

    @property
    def base_url(self) -> str:
        return f"{self.url}/api/v2"
