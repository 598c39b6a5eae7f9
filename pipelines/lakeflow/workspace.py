"""The deployed pipeline on a Databricks workspace, through `databricks-sdk`: find it, start an
update, follow the update to its end, read its event log.

Credentials are the SDK's usual ones (DATABRICKS_HOST with DATABRICKS_TOKEN, a profile of
~/.databrickscfg, OAuth), with DATABRICKS_HOST and DATABRICKS_TOKEN from `.env` on top.
"""

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from conf.settings import Settings

TERMINAL_STATES = ("COMPLETED", "FAILED", "CANCELED")
PIPELINE_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
EVENTS_PAGE = 100
RETRY_SECONDS = 60
"""How long the SDK retries a call that cannot connect or is throttled before giving up."""


class WorkspaceError(Exception):
    """The workspace cannot be reached or refused a call; the message names the setting or object."""


@dataclass(frozen=True)
class Update:
    update_id: str
    state: str
    created: datetime | None
    full_refresh: bool
    cause: str


def _update(info: Any) -> Update:
    created = datetime.fromtimestamp(info.creation_time / 1000, UTC) if info.creation_time else None
    return Update(
        update_id=info.update_id,
        state=info.state.value if info.state else "UNKNOWN",
        created=created,
        full_refresh=bool(info.full_refresh),
        cause=info.cause.value if info.cause else "",
    )


def workspace_client(settings: Settings) -> Any:
    """A `WorkspaceClient` from the SDK's usual credentials, `.env`'s host and token first."""
    try:
        from databricks.sdk import WorkspaceClient
        from databricks.sdk.core import Config
    except ImportError:
        raise WorkspaceError("`mls2 databricks` needs databricks-sdk: pip install 'mls2[databricks]'") from None
    given = {"host": settings.databricks_host, "token": settings.databricks_token}
    try:
        config = Config(**{name: value for name, value in given.items() if value}, retry_timeout_seconds=RETRY_SECONDS)
        return WorkspaceClient(config=config)
    except (ValueError, TimeoutError) as error:
        raise WorkspaceError(
            "no usable Databricks workspace settings: set DATABRICKS_HOST and DATABRICKS_TOKEN (or "
            f"DATABRICKS_CONFIG_PROFILE for a profile of ~/.databrickscfg). The SDK said: {error}"
        ) from None


class Workspace:
    """One pipeline of one workspace, named by id or by its exact name."""

    def __init__(self, client: Any, pipeline: str) -> None:
        self._client = client
        self._pipeline = pipeline
        self._pipeline_id: str | None = pipeline if PIPELINE_ID.match(pipeline) else None

    @property
    def host(self) -> str:
        return self._client.config.host

    @contextmanager
    def _calling(self, what: str, missing: str | None = None) -> Iterator[None]:
        """SDK and connection errors as a WorkspaceError saying which call met which answer; `missing`
        is what a 404 means (by default: the pipeline does not exist)."""
        from databricks.sdk.errors import NotFound, PermissionDenied, Unauthenticated
        from databricks.sdk.errors.base import DatabricksError
        from requests.exceptions import RequestException

        try:
            yield
        except NotFound:
            raise WorkspaceError(missing or f"pipeline {self._pipeline!r} does not exist in {self.host}") from None
        except (Unauthenticated, PermissionDenied) as error:
            raise WorkspaceError(
                f"{self.host} refused to {what}: {error} (check DATABRICKS_TOKEN or the profile)"
            ) from None
        except (DatabricksError, RequestException, TimeoutError) as error:
            raise WorkspaceError(f"could not {what} on {self.host}: {error}") from None
        except ValueError as error:  # the SDK's credentials failed (an OAuth secret refused, ...)
            raise WorkspaceError(f"could not sign in to {self.host} to {what}: {error}") from None

    def pipeline_id(self) -> str:
        if self._pipeline_id is None:
            pattern = self._pipeline.replace("'", "''")
            with self._calling(f"look up pipeline {self._pipeline!r}"):
                found = [
                    p
                    for p in self._client.pipelines.list_pipelines(filter=f"name LIKE '{pattern}'")
                    if p.name == self._pipeline
                ]
            if not found:
                raise WorkspaceError(
                    f"no pipeline named {self._pipeline!r} in {self.host}: deploy the bundle "
                    "(`databricks bundle deploy`) or name the pipeline by id with --pipeline"
                )
            if len(found) > 1:
                ids = ", ".join(p.pipeline_id for p in found)
                raise WorkspaceError(f"{len(found)} pipelines are named {self._pipeline!r} ({ids}): pass one id")
            self._pipeline_id = found[0].pipeline_id
        return self._pipeline_id

    def status(self) -> tuple[Any, list[Update]]:
        """The pipeline (name, state, health) and its latest updates, newest first."""
        pipeline_id = self.pipeline_id()
        with self._calling(f"read pipeline {pipeline_id}"):
            pipeline = self._client.pipelines.get(pipeline_id)
        return pipeline, self._updates()

    def _updates(self, most: int | None = None) -> list[Update]:
        """The pipeline's latest updates, newest first."""
        pipeline_id = self.pipeline_id()
        with self._calling(f"list the updates of pipeline {pipeline_id}"):
            found = self._client.pipelines.list_updates(pipeline_id, max_results=most).updates or []
        return [_update(info) for info in found]

    def start(self, *, full_refresh: bool, refresh: list[str] | None, full_refresh_selection: list[str] | None) -> str:
        pipeline_id = self.pipeline_id()
        with self._calling(f"start an update of pipeline {pipeline_id}"):
            return self._client.pipelines.start_update(
                pipeline_id,
                full_refresh=full_refresh,
                refresh_selection=refresh,
                full_refresh_selection=full_refresh_selection,
            ).update_id

    def update(self, update_id: str) -> Update:
        pipeline_id = self.pipeline_id()
        with self._calling(f"read update {update_id}", f"pipeline {pipeline_id} has no update {update_id}"):
            return _update(self._client.pipelines.get_update(pipeline_id, update_id).update)

    def latest_update(self) -> Update:
        updates = self._updates(most=1)
        if not updates:
            raise WorkspaceError(f"pipeline {self._pipeline!r} has not run an update yet")
        return updates[0]

    def events(
        self,
        update: Update,
        *,
        since: datetime | None = None,
        event_type: str | None = None,
        level: str | None = None,
        limit: int = 1000,
    ) -> list[dict]:
        """The update's events, oldest first, as the REST API gives them (with `details`, which the
        SDK's typed events drop), from the update's creation (or `since`, inclusive) to its end."""
        start = since or update.created
        conditions = [f"level='{level}'"] if level else []
        if start is not None:
            conditions.append(f"timestamp >= '{start.isoformat(timespec='milliseconds').replace('+00:00', 'Z')}'")
        query: dict[str, Any] = {"max_results": EVENTS_PAGE, "order_by": "timestamp asc"}
        if conditions:
            query["filter"] = " AND ".join(conditions)
        path = f"/api/2.0/pipelines/{self.pipeline_id()}/events"
        found: list[dict] = []
        with self._calling(f"read the event log of update {update.update_id}"):
            while True:
                page = self._client.api_client.do("GET", path, query=query)
                ours = [e for e in page.get("events", []) if e.get("origin", {}).get("update_id") == update.update_id]
                found += [e for e in ours if event_type is None or e.get("event_type") == event_type]
                token = page.get("next_page_token")
                if len(found) >= limit or not token or any(map(ends_update, ours)):
                    return found[:limit]
                query = {"page_token": token, "max_results": EVENTS_PAGE}

    def first_error(self, update: Update) -> str | None:
        """The first ERROR event of the update: its message and the first exception's."""
        for event in self.events(update, level="ERROR", limit=1):
            exceptions = (event.get("error") or {}).get("exceptions") or [{}]
            cause = exceptions[0].get("message")
            return event.get("message", "") + (f": {cause}" if cause else "")
        return None


def ends_update(event: dict) -> bool:
    """Whether the event is its update's last state change (later events belong to later updates)."""
    state = ((event.get("details") or {}).get("update_progress") or {}).get("state")
    return event.get("event_type") == "update_progress" and state in TERMINAL_STATES


def event_row(event: dict) -> dict:
    """A REST event as the embedded event log's rows: update, dataset, time, type, details."""
    origin = event.get("origin", {})
    return {
        "update_id": origin.get("update_id"),
        "dataset": origin.get("dataset_name") or origin.get("flow_name"),
        "timestamp": datetime.fromisoformat(event["timestamp"]),
        "event_type": event.get("event_type", ""),
        "details": event.get("details") or {},
    }
