"""The pipeline UI under /ui: pages rendered on the server (Jinja2), an HTTP API for the same
actions (`/ui/api/...`), and live progress as server-sent events. Operators sign in with a password
(`mls2 operators add`); API clients' tokens open nothing here. Every action checks the session's
CSRF token."""

import asyncio
import logging
import secrets
import time
from collections import defaultdict, deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, FastAPI, Form, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel

from conf.settings import Settings
from pipelines.diagram import diagram_lines, node_id
from pipelines.gold import served_tables
from pipelines.graph import load_graph
from pipelines.snapshot import read_pointer
from pipelines.ui.announcement import announced_token
from pipelines.ui.history import flow_states, last_flow_states, update_flows, update_summary, updates
from pipelines.ui.operators import OperatorError, OperatorRegistry
from pipelines.ui.quality import (
    expectation_chart,
    expectation_history,
    freshness,
    integrity_latest,
    quarantine_counts,
    quarantined_rows,
)
from pipelines.ui.runs import (
    ACTIONS,
    FINISHED,
    SELECTIONS,
    AfterUpdate,
    RunBusy,
    RunManager,
    RunRefused,
    RunRequest,
    SyncStep,
)
from pipelines.ui.schedule import ScheduleError, Scheduler
from pipelines.ui.sessions import Session, SessionStore

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
QUARANTINE_PAGE = 50
SESSION_COOKIE = "mls2_ui_session"
LOGIN_COOKIE = "mls2_ui_login"
"""A login form's CSRF token (double submit): a form posted from another site cannot carry it."""
STREAM_POLL_SECONDS = 0.1
"""How often a progress stream reads its run's state (a SQLite read): the follower, such as a shell
waiting for its update, learns of the end this soon."""
KEEP_ALIVE_SECONDS = 15.0
"""Longest silence of a progress stream while a flow runs (a shell following it gives up after 60 s)."""
SHELL_OPERATOR = "shell (mls2 pipeline run)"
"""Who the UI's run list names for an update a shell sent."""


class LoginAttempts:
    """Failed sign-ins per client address: after FAILURES_ALLOWED within WINDOW_SECONDS, that address
    waits until the oldest of them leaves the window (each check costs scrypt's 50 ms and 16 MB)."""

    FAILURES_ALLOWED = 5
    WINDOW_SECONDS = 300

    def __init__(self) -> None:
        self._failures: dict[str, deque[float]] = defaultdict(deque)

    def wait_seconds(self, client: str) -> int:
        failures = self._failures[client]
        now = time.monotonic()
        while failures and now - failures[0] > self.WINDOW_SECONDS:
            failures.popleft()
        if len(failures) < self.FAILURES_ALLOWED:
            return 0
        return int(self.WINDOW_SECONDS - (now - failures[0])) + 1

    def failed(self, client: str) -> None:
        self._failures[client].append(time.monotonic())


class NotSignedIn(Exception):
    """A page asked for without a session: the browser goes to the login page."""


class ActionBody(BaseModel):
    action: str
    datasets: list[str] = []


class ScheduleBody(BaseModel):
    schedule: str


class UiState:
    def __init__(self, settings: Settings, sync: SyncStep | None, after_update: AfterUpdate | None) -> None:
        self.settings = settings
        self.operators = OperatorRegistry(settings.paths.operators)
        self.sessions = SessionStore(settings.paths.ui_state)
        self.runs = RunManager(settings, sync, after_update)
        self.runs.log.abandon_unfinished()
        self.logins = LoginAttempts()
        self.scheduler = Scheduler(settings, self.runs)
        self.templates = Jinja2Templates(directory=HERE / "templates")


def _state(request: Request) -> UiState:
    return request.app.state.pipeline_ui


def _session(request: Request) -> Session | None:
    return _state(request).sessions.find(request.cookies.get(SESSION_COOKIE))


def page_session(request: Request) -> Session:
    session = _session(request)
    if session is None:
        raise NotSignedIn
    return session


def api_session(request: Request) -> Session:
    """A signed-in operator's session, or a shell's (`mls2 pipeline run`) sending the token this
    folder's server announced."""
    session = _session(request)
    if session is not None:
        return session
    scheme, _, sent = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and _same(sent.strip(), announced_token(_state(request).settings.paths)):
        return Session("", SHELL_OPERATOR, "", from_shell=True)
    raise HTTPException(401, "sign in at /ui/login first (an operator's session; API tokens do not open the UI)")


def checked_action(request: Request, session: Annotated[Session, Depends(api_session)]) -> Session:
    """The session of an action, whose X-CSRF-Token header must be the session's token (a shell's
    request has none: see `Session.from_shell`)."""
    if session.from_shell:
        return session
    sent = request.headers.get("x-csrf-token", "")
    if not _same(sent, session.csrf_token):
        raise HTTPException(403, "missing or wrong X-CSRF-Token: reload the page and try again")
    return session


def _cookie(response: Response, request: Request, name: str, value: str, max_age: int | None = None) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/ui",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def _snapshot_node(settings: Settings) -> list[str]:
    """The served snapshot, fed by the gold tables it publishes, as the graph's last node."""
    pointer = read_pointer(settings.paths.snapshot_pointer)
    label = f"published {pointer['published_at'][:19]}" if pointer and "published_at" in pointer else "not published"
    lines = [f'  served_snapshot{{{{"served snapshot<br/>{label}"}}}}']
    lines += [f"  {node_id(table)} --> served_snapshot" for table in served_tables()]
    return lines


router = APIRouter(prefix="/ui", include_in_schema=False)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request) -> Response:
    return _login_form(request)


def _login_form(request: Request, error: str | None = None, status_code: int = 401) -> Response:
    token = secrets.token_urlsafe(24)
    response = _state(request).templates.TemplateResponse(
        request, "login.html", {"login_token": token, "error": error}, status_code=status_code if error else 200
    )
    _cookie(response, request, LOGIN_COOKIE, token, max_age=900)
    return response


def _same(sent: str, expected: str) -> bool:
    """Whether two tokens are equal, in constant time (whatever characters were sent); an empty one
    equals nothing."""
    return bool(expected) and secrets.compare_digest(sent.encode(), expected.encode())


@router.post("/login")
def login(
    request: Request,
    name: Annotated[str, Form()],
    password: Annotated[str, Form()],
    login_token: Annotated[str, Form()],
) -> Response:
    state = _state(request)
    if not _same(login_token, request.cookies.get(LOGIN_COOKIE, "")):
        return _login_form(request, "The form expired: sign in again.")
    client = request.client.host if request.client else "unknown"
    wait = state.logins.wait_seconds(client)
    if wait:
        return _login_form(request, f"Too many failed sign-ins: try again in {wait} s.", status_code=429)
    try:
        known = state.operators.verify(name, password)
    except OperatorError:
        log.exception("the operator registry cannot be read")
        return _login_form(
            request, "Sign-in is unavailable: the operator registry cannot be read (see the server log)."
        )
    if not known:
        state.logins.failed(client)
        return _login_form(request, "Unknown operator or wrong password.")
    session = state.sessions.open(name)
    response = RedirectResponse("/ui/", status_code=303)
    _cookie(response, request, SESSION_COOKIE, session.session_id)
    response.delete_cookie(LOGIN_COOKIE, path="/ui")
    return response


@router.post("/logout")
def logout(request: Request, session: Annotated[Session, Depends(page_session)], csrf_token: Annotated[str, Form()]):
    if not _same(csrf_token, session.csrf_token):
        raise HTTPException(403, "missing or wrong CSRF token: reload the page and try again")
    _state(request).sessions.close(session.session_id)
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/ui")
    return response


@router.get("/", response_class=HTMLResponse)
def overview(
    request: Request, session: Annotated[Session, Depends(page_session)], update: str | None = None
) -> Response:
    """The actions, the graph (as the last update that ran each dataset left it, or as `update` did)
    and the latest updates."""
    state = _state(request)
    graph = load_graph()
    if update is not None and update_summary(state.settings.paths, update) is None:
        raise HTTPException(404, f"no update {update} in the event log")
    flows = (
        flow_states(update_flows(state.settings.paths, update)) if update else last_flow_states(state.settings.paths)
    )
    mermaid = "\n".join([*diagram_lines(graph, "mermaid", flows), *_snapshot_node(state.settings)])
    context = {
        "session": session,
        "actions": ACTIONS,
        "selections": SELECTIONS,
        "datasets": [dataset.name for dataset in graph.ordered()],
        "mermaid": mermaid,
        "nodes": {node_id(name): name for name in graph.datasets},
        "updates": updates(state.settings.paths, limit=30),
        "runs": {run.run_id: run for run in state.runs.log.runs(limit=30)},
        "schedule": state.scheduler.schedule(),
        "can_sync": state.runs.sync is not None,
        "selected": update,
    }
    return state.templates.TemplateResponse(request, "overview.html", context)


@router.get("/updates/{update_id}", response_class=HTMLResponse)
def update_page(request: Request, update_id: str, session: Annotated[Session, Depends(page_session)]) -> Response:
    state = _state(request)
    run = state.runs.log.run(update_id)
    flows = update_flows(state.settings.paths, update_id)
    summary = update_summary(state.settings.paths, update_id)
    if run is None and summary is None:
        raise HTTPException(404, f"no update {update_id}")
    starts = [flow.started_at for flow in flows if flow.started_at] + ([summary.started_at] if summary else [])
    ends = [flow.ended_at for flow in flows if flow.ended_at] + ([summary.ended_at] if summary else [])
    first = min(starts, default=None)
    span = (max(ends) - first).total_seconds() if first and ends else 0
    timeline = {
        flow.dataset: (
            100 * (flow.started_at - first).total_seconds() / span,
            max(0.3, 100 * (flow.seconds or 0) / span),
        )
        for flow in flows
        if span and flow.started_at
    }
    context = {"session": session, "run": run, "summary": summary, "flows": flows, "timeline": timeline}
    return state.templates.TemplateResponse(request, "update.html", context)


@router.get("/datasets/{name}", response_class=HTMLResponse)
def dataset_page(request: Request, name: str, session: Annotated[Session, Depends(page_session)]) -> Response:
    state = _state(request)
    graph = load_graph()
    if name not in graph.datasets:
        raise HTTPException(404, f"no dataset {name} in the graph (see the overview)")
    dataset = graph[name]
    counts = [
        (rule, rows) for dataset_name, rule, rows in quarantine_counts(state.settings.paths) if dataset_name == name
    ]
    context = {
        "session": session,
        "dataset": dataset,
        "downstream": graph.downstream(name),
        "chart": expectation_chart(expectation_history(state.settings.paths, name)),
        "quarantine": counts,
    }
    return state.templates.TemplateResponse(request, "dataset.html", context)


@router.get("/quality", response_class=HTMLResponse)
def quality_page(request: Request, session: Annotated[Session, Depends(page_session)]) -> Response:
    state = _state(request)
    tables, published = freshness(state.settings.paths, list(served_tables()))
    latest = updates(state.settings.paths, limit=1)
    flows = update_flows(state.settings.paths, latest[0].update_id) if latest else []
    context = {
        "session": session,
        "latest": latest[0] if latest else None,
        "flows": [flow for flow in flows if flow.expectations],
        "quarantine": quarantine_counts(state.settings.paths),
        "integrity": integrity_latest(state.settings.paths),
        "docs": (state.settings.integrity_docs / "index.html").exists(),
        "tables": tables,
        "published": published,
        "now": datetime.now(UTC),
    }
    return state.templates.TemplateResponse(request, "quality.html", context)


@router.get("/quarantine", response_class=HTMLResponse)
def quarantine_page(
    request: Request,
    session: Annotated[Session, Depends(page_session)],
    dataset: str | None = None,
    rule: str | None = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    state = _state(request)
    rows, total = quarantined_rows(
        state.settings.paths,
        dataset=dataset or None,
        rule=rule or None,
        limit=QUARANTINE_PAGE,
        offset=(page - 1) * QUARANTINE_PAGE,
    )
    context = {
        "session": session,
        "rows": rows,
        "total": total,
        "dataset": dataset or "",
        "rule": rule or "",
        "page": page,
        "pages": max(1, -(-total // QUARANTINE_PAGE)),
        "counts": quarantine_counts(state.settings.paths),
    }
    return state.templates.TemplateResponse(request, "quarantine.html", context)


@router.get("/integrity/docs/{path:path}")
def integrity_docs(request: Request, path: str, session: Annotated[Session, Depends(page_session)]) -> Response:
    """The integrity suite's Data Docs (GX's HTML site), to signed-in operators only."""
    root = _state(request).settings.integrity_docs.resolve()
    wanted = (root / (path or "index.html")).resolve()
    if not wanted.is_relative_to(root) or not wanted.is_file():
        raise HTTPException(404, "no such page in the Data Docs (run `mls2 integrity run` to build them)")
    # GX's pages load scripts from public CDNs: sandboxed, they run in an origin of their own, which
    # neither sends this UI's cookies nor reads its pages.
    return FileResponse(wanted, headers={"Content-Security-Policy": "sandbox allow-scripts allow-popups"})


@router.get("/api/updates")
def list_updates(request: Request, session: Annotated[Session, Depends(api_session)]) -> JSONResponse:
    state = _state(request)
    runs = {run.run_id: run for run in state.runs.log.runs(limit=50)}
    found = [
        {
            "update_id": u.update_id,
            "state": u.state,
            "cause": u.cause,
            "full_refresh": u.full_refresh,
            "started_at": u.started_at.isoformat(),
            "seconds": u.seconds,
            "trigger": runs[u.update_id].trigger if u.update_id in runs else None,
        }
        for u in updates(state.settings.paths, limit=50)
    ]
    running = [
        {"update_id": run.run_id, "state": run.state, "action": run.action, "trigger": run.trigger}
        for run in runs.values()
        if run.state == "RUNNING"
    ]
    return JSONResponse({"running": running, "updates": found})


@router.get("/api/running")
def running_updates(request: Request, session: Annotated[Session, Depends(api_session)]) -> dict:
    """The runs under way (from the UI's own records: cheap to poll), whichever process runs them."""
    runs = _state(request).runs.log.runs(limit=5)
    return {
        "running": [
            {"update_id": r.run_id, "trigger": r.trigger, "action": r.action} for r in runs if r.state == "RUNNING"
        ]
    }


@router.post("/api/updates", status_code=202)
def start_update(request: Request, body: ActionBody, session: Annotated[Session, Depends(checked_action)]) -> dict:
    trigger = "api" if request.headers.get("x-mls2-trigger") == "api" else "manual"
    try:
        run_id = _state(request).runs.start(
            RunRequest(body.action, tuple(body.datasets), trigger=trigger, operator=session.operator)
        )
    except RunRefused as error:
        raise HTTPException(400, str(error)) from None
    except RunBusy as error:
        raise HTTPException(409, str(error)) from None
    return {"update_id": run_id, "events": f"/ui/api/updates/{run_id}/events"}


@router.get("/api/schedule")
def get_schedule(request: Request, session: Annotated[Session, Depends(api_session)]) -> dict:
    return {"schedule": str(_state(request).scheduler.schedule())}


@router.post("/api/schedule")
def set_schedule(request: Request, body: ScheduleBody, session: Annotated[Session, Depends(checked_action)]) -> dict:
    """`off`, `every N minutes` or `continuous`; kept, so a restart keeps it."""
    try:
        return {"schedule": str(_state(request).scheduler.set(body.schedule))}
    except ScheduleError as error:
        raise HTTPException(400, str(error)) from None


@router.post("/api/updates/{update_id}/cancel", status_code=202)
def cancel_update(request: Request, update_id: str, session: Annotated[Session, Depends(checked_action)]) -> dict:
    if not _state(request).runs.cancel(update_id):
        raise HTTPException(409, f"update {update_id} is not running")
    return {"update_id": update_id, "canceling": True}


@router.get("/api/updates/{update_id}/events")
async def update_events(
    request: Request, update_id: str, session: Annotated[Session, Depends(api_session)]
) -> StreamingResponse:
    """The run's flows as they change (`event: flow`), then `event: end` with its final state."""
    log = _state(request).runs.log
    if log.run(update_id) is None:
        raise HTTPException(404, f"no update {update_id} started from the UI")

    async def stream():
        sent, said = 0, time.monotonic()
        while True:
            run = await asyncio.to_thread(log.run, update_id)
            for flow in run.flows[sent:]:
                yield f"event: flow\ndata: {orjson.dumps(flow).decode()}\n\n"
                said = time.monotonic()
            sent = len(run.flows)
            if time.monotonic() - said > KEEP_ALIVE_SECONDS:
                yield ": the update runs\n\n"  # a comment: the follower knows the server is there
                said = time.monotonic()
            if run.state in FINISHED:
                end = {
                    "state": run.state,
                    "error": run.error,
                    "sync": run.sync,
                    "checks": run.checks,
                    "report": run.report,
                }
                yield f"event: end\ndata: {orjson.dumps(end).decode()}\n\n"
                return
            if await request.is_disconnected():
                return
            await asyncio.sleep(STREAM_POLL_SECONDS)

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})


def mount_pipeline_ui(
    app: FastAPI, settings: Settings, sync: SyncStep | None = None, after_update: AfterUpdate | None = None
) -> None:
    """Serve the pipeline UI from `app` (the API's application) under /ui."""
    state = UiState(settings, sync, after_update)
    app.state.pipeline_ui = state
    app.router.on_startup.append(state.scheduler.start)
    app.router.on_shutdown.append(state.scheduler.stop)
    app.router.on_shutdown.append(state.runs.stop)
    app.include_router(router)
    app.mount("/ui/static", StaticFiles(directory=HERE / "static"), name="pipeline_ui_static")

    @app.exception_handler(NotSignedIn)
    async def to_login(request: Request, _: NotSignedIn) -> Response:
        return RedirectResponse("/ui/login", status_code=303)
