"""Shared needs of the routes, as `Annotated` dependencies: routes never open connections themselves."""

from typing import Annotated

from fastapi import Depends, Request

from conf.settings import Settings
from graphql_odata.backends.base import Backend


def get_backend(request: Request) -> Backend:
    return request.app.state.backend


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


BackendDep = Annotated[Backend, Depends(get_backend)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
