"""The sandbox's HTTP face: the Qobrix API v2 routes the product uses, plus admin routes.

API routes need `X-Api-User` / `X-Api-Key` and answer errors with Qobrix's envelope
`{"errors": [...]}`. Admin routes live under `/_sandbox` (no auth) so tests,
benchmarks and the demo can move sandbox time forward and switch faults on.
"""

import logging
import os
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import orjson
import uvicorn
from fastapi import Body, FastAPI, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ingestion.sandbox.faults import FaultConfig, FaultConfigError, Faults
from ingestion.sandbox.generators.entities import ENTITIES
from ingestion.sandbox.search import SearchError
from ingestion.sandbox.shared import ChangeLog, SharedSandbox
from ingestion.sandbox.world import Changes, NotFound, SandboxWorld

SANDBOX_API_USER = "sandbox-user"
SANDBOX_API_KEY = "sandbox-key"
MAX_LIMIT = 100
CUT_MESSAGE = "sandbox fault: connection cut mid-body"
CHURN = {"properties": Changes(updates=2, creates=1), "contacts": Changes(updates=1)}
"""The small change a client sees land while it pages (`churn_every`)."""


class QobrixHTTPError(Exception):
    def __init__(self, status: int, *messages: str, headers: dict | None = None) -> None:
        self.status = status
        self.messages = list(messages)
        self.headers = headers or {}


def json_response(payload: object, status: int = 200, headers: dict | None = None) -> Response:
    """JSON as Qobrix sends it, serialised with orjson (the sandbox's hot path)."""
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json", headers=headers)


def _error(status: int, *messages: str, headers: dict | None = None) -> Response:
    return json_response({"errors": list(messages)}, status, headers)


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


def create_app(
    world: SandboxWorld | SharedSandbox,
    *,
    api_user: str = SANDBOX_API_USER,
    api_key: str = SANDBOX_API_KEY,
) -> FastAPI:
    shared = world if isinstance(world, SharedSandbox) else SharedSandbox(world)
    world, faults = shared.world, shared.faults
    app = FastAPI(title="Qobrix sandbox", docs_url="/_sandbox/docs", openapi_url="/_sandbox/openapi.json")
    app.state.shared = shared

    @app.exception_handler(QobrixHTTPError)
    async def _qobrix_error(_: Request, error: QobrixHTTPError) -> Response:
        return _error(error.status, *error.messages, headers=error.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, error: StarletteHTTPException) -> Response:
        return _error(error.status_code, str(error.detail))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, error: RequestValidationError) -> Response:
        messages = [f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in error.errors()]
        return _error(400, *messages)

    def authenticate(request: Request) -> None:
        if request.headers.get("x-api-user") != api_user or request.headers.get("x-api-key") != api_key:
            raise QobrixHTTPError(401, "Unauthorized: missing or invalid X-Api-User / X-Api-Key")
        shared.catch_up()

    def fault_before(kind: str | None) -> None:
        if kind in ("500", "502", "503"):
            raise QobrixHTTPError(int(kind), f"sandbox fault: HTTP {kind}")
        if kind == "429":
            seconds = faults.config.retry_after
            retry_after = str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"
            raise QobrixHTTPError(429, "Too Many Requests", headers={"Retry-After": retry_after})
        if kind == "slow":
            time.sleep(faults.config.slow_seconds)

    def respond(kind: str | None, payload: dict | bytes) -> Response:
        body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
        if kind == "cut":
            return CutResponse(body, media_type="application/json")
        if kind == "malformed":
            return Response(body[: max(1, len(body) // 3)] + b'{"', media_type="application/json")
        return Response(body, media_type="application/json")

    def entity_of(path: str) -> str:
        if path not in ENTITIES:
            raise QobrixHTTPError(404, f"Not Found: /api/v2/{path}")
        return path

    def list_entity(entity: str, request: Request) -> Response:
        authenticate(request)
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
        fault_before(kind)
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
        body = (
            b'{"data":[' + b",".join(records) + b'],"pagination":' + orjson.dumps(pagination(count, page, limit)) + b"}"
        )
        return respond(kind, body)

    def read_entity(entity: str, record_id: str, request: Request) -> Response:
        authenticate(request)
        params = request.query_params
        trashed = _flag("trashed", params.get("trashed"), False)
        expand = _flag("expand", params.get("expand"), True)
        media = _flag("media", params.get("media"), True)
        kind = faults.draw()
        fault_before(kind)
        try:
            record = world.get(entity, record_id, trashed=trashed, expand=expand, media=media)
        except NotFound as error:
            raise QobrixHTTPError(404, str(error)) from None
        return respond(kind, {"data": faults.defect(entity, record)})

    @app.get(
        "/api/v2/media/by-category/{category}/{resource}/{record_id}",
        summary="Media of a property or project by category",
    )
    def media_by_category(category: str, resource: str, record_id: str, request: Request) -> Response:
        authenticate(request)
        kind = faults.draw()
        fault_before(kind)
        try:
            items = world.media_by_category(category, resource, record_id)
        except NotFound as error:
            raise QobrixHTTPError(404, str(error)) from None
        return respond(kind, {"data": items})

    @app.get("/api/v2/media/categories", summary="List media categories")
    def list_media_categories(request: Request) -> Response:
        return list_entity("media/categories", request)

    @app.get("/api/v2/media/categories/{record_id}", summary="Read one media category")
    def read_media_category(record_id: str, request: Request) -> Response:
        return read_entity("media/categories", record_id, request)

    @app.get("/api/v2/{path}", summary="List records of an entity")
    def list_records(path: str, request: Request) -> Response:
        return list_entity(entity_of(path), request)

    @app.get("/api/v2/{path}/{record_id}", summary="Read one record")
    def read_record(path: str, record_id: str, request: Request) -> Response:
        return read_entity(entity_of(path), record_id, request)

    @app.post("/_sandbox/advance", summary="Move sandbox time forward")
    def advance(
        steps: Annotated[int, Query(ge=1, le=10_000)] = 1,
        changes: Annotated[dict[str, dict[str, int]] | None, Body()] = None,
    ) -> dict:
        try:
            plan = {entity: Changes(**counts) for entity, counts in changes.items()} if changes else None
        except TypeError as error:
            raise QobrixHTTPError(400, f"changes: {error}") from None
        unknown = [entity for entity in (plan or {}) if entity not in ENTITIES]
        if unknown:
            raise QobrixHTTPError(400, f"changes: unknown entities {unknown}")
        report = shared.advance(
            steps=steps, changes={entity: asdict(change) for entity, change in plan.items()} if plan else None
        )
        return {"step": report.step, "clock": report.clock.isoformat(), "changed": report.changed}

    @app.get("/_sandbox/state", summary="Seed, size, step and clock")
    def state() -> dict:
        shared.catch_up()
        return {
            "seed": world.seed,
            "properties": world.property_count,
            "step": world.step,
            "clock": world.clock.isoformat(),
            "counts": {entity: world.live_count(entity) for entity in ENTITIES},
            "faults_seen": faults.seen,
        }

    @app.get("/_sandbox/faults", summary="Current fault settings")
    def get_faults() -> dict:
        shared.catch_up()
        return faults.config.public()

    @app.put("/_sandbox/faults", summary="Replace fault settings")
    def put_faults(settings: Annotated[dict, Body()]) -> dict:
        try:
            shared.configure_faults(FaultConfig(**settings))
        except (TypeError, FaultConfigError) as error:
            raise QobrixHTTPError(400, f"faults: {error}") from None
        return faults.config.public()

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

    def __init__(
        self, world: SandboxWorld, *, host: str = "127.0.0.1", port: int = 0, faults: FaultConfig | None = None
    ) -> None:
        self.shared = SharedSandbox(world, faults=Faults(faults))
        super().__init__(create_app(self.shared), host=host, port=port, name="qobrix-sandbox")
        self.world = world
        self.faults = self.shared.faults

    @property
    def base_url(self) -> str:
        return f"{self.url}/api/v2"


STATE_DIR_VARIABLE = "MLS2_SANDBOX_STATE_DIR"


def app_from_environment() -> FastAPI:
    """The app of one worker process of `mls2 sandbox serve --workers N` (uvicorn factory).

    Workers share the advance log and fault settings through files in the state directory.
    """
    state_dir = Path(os.environ[STATE_DIR_VARIABLE])
    settings = orjson.loads((state_dir / "sandbox.json").read_bytes())
    world = SandboxWorld(seed=settings["seed"], properties=settings["properties"])
    shared = SharedSandbox(world, log=ChangeLog(state_dir / "advance.jsonl"), faults_file=state_dir / "faults.json")
    shared.catch_up()
    return create_app(shared)
