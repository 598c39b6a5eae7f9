"""The sandbox served over HTTP: the app assembled from its routers, and servers that run it.

`create_app` builds one app per worker; `SandboxServer` runs one on a background
thread (tests, benchmarks, the demo); `app_from_environment` is the uvicorn factory of
`mls2 sandbox serve --workers N`.
"""

import os
import threading
import time
from pathlib import Path

import orjson
import uvicorn
from fastapi import FastAPI

from ingestion.sandbox.faults import FaultConfig, Faults
from ingestion.sandbox.routes import admin, media, records
from ingestion.sandbox.routes.errors import ERROR_HANDLERS
from ingestion.sandbox.routes.state import SandboxState
from ingestion.sandbox.shared import ChangeLog, SharedSandbox
from ingestion.sandbox.world import SandboxWorld

SANDBOX_API_USER = "sandbox-user"
SANDBOX_API_KEY = "sandbox-key"


def create_app(
    world: SandboxWorld | SharedSandbox,
    *,
    api_user: str = SANDBOX_API_USER,
    api_key: str = SANDBOX_API_KEY,
) -> FastAPI:
    """The Qobrix API v2 routes the product uses, plus the admin routes, over one (shared) sandbox."""
    shared = world if isinstance(world, SharedSandbox) else SharedSandbox(world)
    app = FastAPI(
        title="Qobrix sandbox",
        docs_url="/_sandbox/docs",
        openapi_url="/_sandbox/openapi.json",
        exception_handlers=ERROR_HANDLERS,
    )
    app.state.sandbox = SandboxState(shared=shared, api_user=api_user, api_key=api_key)
    for router in (media.router, records.router, admin.router):
        app.include_router(router)
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

    def stop(self) -> None:
        self.faults.stop_stalls()
        super().stop()

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
