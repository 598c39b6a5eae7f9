"""The FastAPI application: OData under /odata, GraphQL at /graphql, /health, /docs."""

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from conf.settings import Settings, load_settings
from graphql_odata.backends.base import Backend
from graphql_odata.backends.databricks import DatabricksBackend, warehouse_connector
from graphql_odata.backends.snapshot import SnapshotBackend
from graphql_odata.graphql.types import graphql_schema
from graphql_odata.odata.errors import (
    ODataError,
    http_error_handler,
    internal_error_handler,
    odata_error_handler,
    validation_error_handler,
)
from graphql_odata.request_limits import TokenAttemptLimit, UrlLengthLimit
from graphql_odata.routes import graphql, health, oauth, odata
from graphql_odata.schema import entity_sets
from graphql_odata.security.guard import Security


def make_backend(settings: Settings) -> Backend:
    """The backend MLS2_API_BACKEND names; a SettingsError says what a Databricks backend still needs."""
    if settings.mls2_api_backend == "databricks":
        return DatabricksBackend(warehouse_connector(*settings.require_databricks()), settings.mls2_gold_schema)
    return SnapshotBackend(settings.paths.snapshot_pointer)


def create_app(settings: Settings | None = None, backend: Backend | None = None) -> FastAPI:
    settings = settings or load_settings()
    app = FastAPI(
        title="MLS 2.0 RESO Web API",
        description="RESO Data Dictionary 2.0 resources from Qobrix, served as OData and GraphQL.",
        version="0.1.0",
    )
    app.state.settings = settings
    # The entity model and the GraphQL schema, built from the mapping files now rather than by the
    # first requests, which each built them side by side (functools.cache does not hold the others back).
    entity_sets()
    graphql_schema()
    app.state.backend = backend or make_backend(settings)
    app.state.security = Security.from_settings(settings)
    app.add_exception_handler(ODataError, odata_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(Exception, internal_error_handler)
    app.include_router(health.router)
    app.include_router(oauth.router)
    app.include_router(odata.router)
    app.include_router(graphql.router)
    app.add_middleware(TokenAttemptLimit)
    app.add_middleware(UrlLengthLimit)
    return app
