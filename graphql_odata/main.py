"""The FastAPI application: OData under /odata, /health, /docs."""

from fastapi import FastAPI

from conf.settings import Settings, load_settings
from graphql_odata.backends.snapshot import SnapshotBackend
from graphql_odata.odata.errors import ODataError, odata_error_handler
from graphql_odata.routes import health, odata


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    app = FastAPI(
        title="MLS 2.0 RESO Web API",
        description="RESO Data Dictionary 2.0 resources from Qobrix, served as OData.",
        version="0.1.0",
    )
    app.state.settings = settings
    app.state.backend = SnapshotBackend(settings.paths.snapshot_pointer)
    app.add_exception_handler(ODataError, odata_error_handler)
    app.include_router(health.router)
    app.include_router(odata.router)
    return app
