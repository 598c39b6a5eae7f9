"""A local HTTP server answering the Databricks REST API's pipeline calls as a workspace does (paths,
bodies, error shapes, paging by `page_token`), recording every request for tests to assert.

An update follows a script: each `GET .../updates/<id>` moves it to its next state and appends that
step's events to the pipeline's event log, the way a real update's log grows while it runs.
"""

import base64
import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

TOKEN = "dapi-test-token"
CLIENT_ID, CLIENT_SECRET = "mls2-api-app", "app-secret"
"""A service principal's OAuth credentials, which the server trades for TOKEN (OAuth M2M)."""
SERVER_PAGE = 25
"""The most events the server returns a page, whatever `max_results` asks (so paging is exercised)."""


class BadRequest(ValueError):
    """A query the REST API refuses (answered 400 INVALID_PARAMETER_VALUE)."""


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    body: dict | None
    authorization: str | None


@dataclass
class Step:
    state: str
    events: list[dict] = field(default_factory=list)
    """Events as `flow(...)`/`error(...)` build them; ids, times and the update's id are filled in."""


def flow(name: str, status: str, **details: Any) -> dict:
    progress = {"status": status, **details}
    message = f"Flow '{name}' is {status}."
    return {"event_type": "flow_progress", "origin": {"flow_name": name, "dataset_name": name},
            "level": "INFO", "message": message, "details": {"flow_progress": progress}}  # fmt: skip


def error(message: str, cause: str) -> dict:
    return {"event_type": "update_progress", "origin": {}, "level": "ERROR", "message": message,
            "error": {"fatal": True, "exceptions": [{"class_name": "AnalysisException", "message": cause}]},
            "details": {"update_progress": {"state": "FAILED"}}}  # fmt: skip


@dataclass
class Pipeline:
    pipeline_id: str
    name: str
    state: str = "IDLE"
    health: str = "HEALTHY"
    updates: list[dict] = field(default_factory=list)
    """Newest first, as the API lists them."""
    scripts: dict[str, list[Step]] = field(default_factory=dict)


class FakeWorkspace:
    def __init__(self) -> None:
        self.pipelines: dict[str, Pipeline] = {}
        self.events: list[dict] = []
        self.requests: list[Request] = []
        self.script: list[Step] = [Step("COMPLETED")]
        """What the next started update does."""
        self._clock = datetime.now(UTC).replace(microsecond=0)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())

    @property
    def host(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def __enter__(self) -> "FakeWorkspace":
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def add_pipeline(self, name: str = "mls2_dev") -> Pipeline:
        pipeline = Pipeline(str(uuid.uuid4()), name)
        self.pipelines[pipeline.pipeline_id] = pipeline
        return pipeline

    def api_requests(self) -> list[Request]:
        """Requests to the REST API (not the SDK's discovery of the workspace's configuration)."""
        return [r for r in self.requests if r.path.startswith("/api/")]

    def add_update(self, pipeline: Pipeline, steps: list[Step], *, full_refresh: bool = False) -> str:
        """An update as if started earlier: every step already run, its events in the log."""
        update_id = self._create(pipeline, {"full_refresh": full_refresh, "cause": "JOB_TASK"})
        pipeline.scripts[update_id] = list(steps)
        while pipeline.scripts[update_id]:
            self._advance(pipeline, pipeline.updates[0])
        return update_id

    def _tick(self) -> datetime:
        self._clock += timedelta(milliseconds=250)
        return self._clock

    def _create(self, pipeline: Pipeline, body: dict) -> str:
        update_id = str(uuid.uuid4())
        created = self._tick()
        pipeline.updates.insert(0, {
            "pipeline_id": pipeline.pipeline_id, "update_id": update_id, "state": "QUEUED",
            "creation_time": int(created.timestamp() * 1000), "cause": body.get("cause", "API_CALL"),
            "full_refresh": bool(body.get("full_refresh")),
        })  # fmt: skip
        pipeline.scripts[update_id] = list(self.script)
        return update_id

    def _advance(self, pipeline: Pipeline, update: dict) -> None:
        steps = pipeline.scripts[update["update_id"]]
        if not steps:
            return
        step = steps.pop(0)
        update["state"] = step.state
        for event in [{"event_type": "update_progress", "origin": {}, "level": "INFO",
                       "message": f"Update is {step.state}.",
                       "details": {"update_progress": {"state": step.state}}}, *step.events]:  # fmt: skip
            origin = {**event["origin"], "pipeline_id": pipeline.pipeline_id, "update_id": update["update_id"]}
            stamp = self._tick().isoformat(timespec="milliseconds").replace("+00:00", "Z")
            self.events.append({**event, "id": str(uuid.uuid4()), "origin": origin, "timestamp": stamp,
                                "sequence": {"control_plane_seq_no": len(self.events)}})  # fmt: skip

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        workspace = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _answer(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _serve(self, method: str) -> None:
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                data = self.rfile.read(length) if length else b""
                form = self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded")
                body = {k: v[-1] for k, v in parse_qs(data.decode()).items()} if form else json.loads(data or "null")
                query = {name: values[-1] for name, values in parse_qs(url.query).items()}
                with workspace._lock:
                    workspace.requests.append(Request(method, url.path, query, body, self.headers.get("Authorization")))
                    status, answer = workspace.answer(method, url.path, query, body or {},
                                                      self.headers.get("Authorization"))  # fmt: skip
                self._answer(status, answer)

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

        return Handler

    def answer(self, method: str, path: str, query: dict, body: dict, authorization: str | None) -> tuple[int, dict]:
        if path == "/.well-known/databricks-config":
            return 200, {"oidc_endpoint": f"{self.host}/oidc", "workspace_id": "1234567890", "cloud": "aws"}
        if path == "/oidc/.well-known/oauth-authorization-server":
            return 200, {"authorization_endpoint": f"{self.host}/oidc/v1/authorize",
                         "token_endpoint": f"{self.host}/oidc/v1/token"}  # fmt: skip
        if path == "/oidc/v1/token" and method == "POST":
            return self._token(body, authorization)
        if not path.startswith("/api/"):
            return 404, {"error_code": "ENDPOINT_NOT_FOUND", "message": f"no endpoint {path}"}
        if authorization != f"Bearer {TOKEN}":
            return 401, {"error_code": "UNAUTHENTICATED", "message": "Invalid access token."}
        route = re.fullmatch(r"/api/2\.0/pipelines(?:/([^/]+))?(?:/(updates|events))?(?:/([^/]+))?", path)
        if route is None:
            return 404, {"error_code": "ENDPOINT_NOT_FOUND", "message": f"no endpoint {path}"}
        pipeline_id, collection, item = route.groups()
        if pipeline_id is None:
            return 200, self._list_pipelines(query.get("filter", ""))
        pipeline = self.pipelines.get(pipeline_id)
        if pipeline is None:
            return 404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": f"Pipeline {pipeline_id} not found."}
        if collection is None:
            return 200, {"pipeline_id": pipeline_id, "name": pipeline.name, "state": pipeline.state,
                         "health": pipeline.health, "latest_updates": pipeline.updates[:5]}  # fmt: skip
        if collection == "updates" and method == "POST":
            return 200, {"update_id": self._create(pipeline, body)}
        if collection == "updates" and item is None:
            return 200, {"updates": pipeline.updates}
        if collection == "updates":
            update = next((u for u in pipeline.updates if u["update_id"] == item), None)
            if update is None:
                return 404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": f"Update {item} not found."}
            self._advance(pipeline, update)
            return 200, {"update": update}
        try:
            return 200, self._events(pipeline, query)
        except BadRequest as error:
            return 400, {"error_code": "INVALID_PARAMETER_VALUE", "message": str(error)}

    def _token(self, form: dict, authorization: str | None) -> tuple[int, dict]:
        """OAuth client credentials, in the form or as HTTP Basic, traded for TOKEN."""
        basic = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        in_form = (form.get("client_id"), form.get("client_secret")) == (CLIENT_ID, CLIENT_SECRET)
        if form.get("grant_type") != "client_credentials" or not (in_form or authorization == basic):
            return 401, {"error": "invalid_client", "error_description": "Client authentication failed"}
        return 200, {"access_token": TOKEN, "token_type": "Bearer", "expires_in": 3600, "scope": form.get("scope")}

    def _list_pipelines(self, condition: str) -> dict:
        match = re.fullmatch(r"name LIKE '((?:[^']|'')*)'", condition)
        if match is None:
            return {"statuses": [{"pipeline_id": p.pipeline_id, "name": p.name} for p in self.pipelines.values()]}
        like = match.group(1).replace("''", "'")
        pattern = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in like)
        found = [p for p in self.pipelines.values() if re.fullmatch(pattern, p.name)]
        return {"statuses": [{"pipeline_id": p.pipeline_id, "name": p.name, "state": p.state} for p in found]}

    def _events(self, pipeline: Pipeline, query: dict) -> dict:
        """Events of the pipeline by `filter` (`timestamp >= '...'`) and `order_by`, a page at a time;
        a page token carries the query on, as the API's does."""
        if "page_token" in query:
            if {"filter", "order_by"} & set(query):
                raise BadRequest("page_token cannot be combined with filter or order_by")
            query = json.loads(query["page_token"])
        events = [e for e in self.events if e["origin"]["pipeline_id"] == pipeline.pipeline_id]
        for condition in filter(None, query.get("filter", "").split(" AND ")):
            if since := re.fullmatch(r"timestamp >= '([^']+)'", condition):
                start = datetime.fromisoformat(since.group(1))
                events = [e for e in events if datetime.fromisoformat(e["timestamp"]) >= start]
            elif level := re.fullmatch(r"level='(INFO|WARN|ERROR)'", condition):
                events = [e for e in events if e["level"] == level.group(1)]
            else:
                raise BadRequest(f"unsupported filter {condition!r}")
        if query.get("order_by") != "timestamp asc":
            events.reverse()
        offset = int(query.get("offset", 0))
        size = min(int(query.get("max_results", SERVER_PAGE)), SERVER_PAGE)
        page = {"events": events[offset : offset + size]}
        if offset + size < len(events):
            page["next_page_token"] = json.dumps({**query, "offset": offset + size})
        return page
