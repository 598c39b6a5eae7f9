"""What every route reads, kept on `app.state` and handed to routes as a dependency."""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from ingestion.sandbox.routes.errors import QobrixHTTPError
from ingestion.sandbox.shared import SharedSandbox


@dataclass(frozen=True)
class SandboxState:
    """One app's sandbox (its world and faults, shared with other workers) and the credentials it accepts."""

    shared: SharedSandbox
    api_user: str
    api_key: str

    def authenticate(self, request: Request) -> None:
        """Check the API credentials, then catch up with advance calls other workers made."""
        if request.headers.get("x-api-user") != self.api_user or request.headers.get("x-api-key") != self.api_key:
            raise QobrixHTTPError(401, "Unauthorized: missing or invalid X-Api-User / X-Api-Key")
        self.shared.catch_up()


async def sandbox_state(request: Request) -> SandboxState:
    """The app's `SandboxState` (a dependency: it checks nothing, so routes decide when to authenticate)."""
    return request.app.state.sandbox


Sandbox = Annotated[SandboxState, Depends(sandbox_state)]
"""A route parameter receiving the app's `SandboxState`."""
