"""Updates the UI starts: one at a time, in a thread of the serving process. A run takes the pipeline
lock when it is asked for and holds it from its sync to its update's end, so another run (from any
serving process) or `mls2 pipeline run` from a shell is refused meanwhile. Each run, its flows'
progress and a request to cancel it are kept in the UI's SQLite file: any serving process streams
the one and records the other.
"""

import fcntl
import logging
import sqlite3
import threading
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import orjson

from conf.settings import Settings
from pipelines.declaration import DeclarationError
from pipelines.embedded import (
    PipelineBusy,
    PipelineError,
    UpdateCanceled,
    maintain_if_due,
    pipeline_lock,
    run_update,
    update_report,
)
from pipelines.graph import load_graph
from pipelines.ui.database import connect

log = logging.getLogger(__name__)

ACTIONS = {
    "sync_update": "Sync and update",
    "update": "Update",
    "full_refresh": "Full refresh",
    "refresh_selection": "Refresh selection",
    "full_refresh_selection": "Full refresh selection",
}
SELECTIONS = ("refresh_selection", "full_refresh_selection")
"""The actions on the datasets a run names: refreshed, or recomputed from scratch."""
CAUSES = {"manual": "USER_ACTION", "api": "API_CALL", "schedule": "SCHEDULED"}
"""What the event log records as an update's cause, by what started it."""
FINISHED = ("COMPLETED", "FAILED", "CANCELED")
CANCEL_POLL_SECONDS = 0.5

SyncStep = Callable[[Settings], dict]
"""Lands what changed in Qobrix (given by the composition root, `conf.cli`): a summary to show,
such as entities, records landed and HTTP calls."""
AfterUpdate = Callable[[Settings], bool]
"""What runs after a completed update (the integrity suite, given by `conf.cli`): whether it holds."""


class RunRefused(ValueError):
    """A run that cannot start: its reason is shown to the operator (HTTP 400)."""


class RunBusy(RuntimeError):
    """Another update is running (HTTP 409)."""


@dataclass(frozen=True)
class RunRequest:
    action: str
    datasets: tuple[str, ...] = ()
    trigger: str = "manual"
    operator: str | None = None


@dataclass
class Run:
    run_id: str
    action: str
    trigger: str
    state: str
    started_at: str
    finished_at: str | None = None
    operator: str | None = None
    datasets: list[str] = field(default_factory=list)
    error: str | None = None
    sync: dict | None = None
    checks: str | None = None
    """After a completed update: `passed` or `failed` (a critical integrity expectation)."""
    report: dict | None = None
    """What the completed update did (`pipelines.embedded.update_report`)."""
    flows: list[dict] = field(default_factory=list)

    @property
    def label(self) -> str:
        return ACTIONS.get(self.action, self.action)


RUN_COLUMNS = "run_id, action, trigger, state, started_at, finished_at, operator, datasets, error, sync, checks, report"


class RunLog:
    """The runs the UI started and their flows' states, in the UI's SQLite file."""

    def __init__(self, settings: Settings) -> None:
        self.path = settings.paths.ui_state
        with connect(self.path) as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS runs (run_id TEXT PRIMARY KEY, action TEXT, trigger TEXT, state TEXT, "
                "started_at TEXT, finished_at TEXT, operator TEXT, datasets TEXT, error TEXT, sync TEXT, checks TEXT, "
                "cancel_requested INTEGER DEFAULT 0, report TEXT)"
            )
            if "report" not in {row[1] for row in db.execute("PRAGMA table_info(runs)")}:
                with suppress(sqlite3.OperationalError):  # another process added it meanwhile
                    db.execute("ALTER TABLE runs ADD COLUMN report TEXT")  # a file an older version made
            db.execute(
                "CREATE TABLE IF NOT EXISTS run_flows (run_id TEXT, sequence INTEGER, dataset TEXT, state TEXT, "
                "at TEXT, PRIMARY KEY (run_id, sequence))"
            )

    def begin(self, run_id: str, request: RunRequest) -> None:
        with connect(self.path) as db:
            db.execute(
                f"INSERT INTO runs ({RUN_COLUMNS}) VALUES (?, ?, ?, 'RUNNING', ?, NULL, ?, ?, NULL, NULL, NULL, NULL)",
                (run_id, request.action, request.trigger, _now(), request.operator, orjson.dumps(request.datasets)),
            )

    def flow(self, run_id: str, dataset: str, state: str, db: sqlite3.Connection | None = None) -> None:
        """Record a flow's new state (on `db` when given: an update's progress keeps one connection)."""
        if db is None:
            with connect(self.path) as db:
                self.flow(run_id, dataset, state, db)
            return
        db.execute(
            "INSERT INTO run_flows SELECT ?, coalesce(max(sequence), -1) + 1, ?, ?, ? FROM run_flows WHERE run_id = ?",
            (run_id, dataset, state, _now(), run_id),
        )

    def request_cancel(self, run_id: str) -> bool:
        """Ask a running run to stop (whichever serving process runs it); whether it is running."""
        with connect(self.path) as db:
            changed = db.execute(
                "UPDATE runs SET cancel_requested = 1 WHERE run_id = ? AND state = 'RUNNING'", (run_id,)
            ).rowcount
        return changed == 1

    def cancel_requested(self, run_id: str) -> bool:
        with connect(self.path) as db:
            row = db.execute("SELECT cancel_requested FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return bool(row and row[0])

    def sync_done(self, run_id: str, summary: dict) -> None:
        with connect(self.path) as db:
            db.execute("UPDATE runs SET sync = ? WHERE run_id = ?", (orjson.dumps(summary), run_id))

    def record_report(self, run_id: str, report: dict) -> None:
        with connect(self.path) as db:
            db.execute("UPDATE runs SET report = ? WHERE run_id = ?", (orjson.dumps(report), run_id))

    def finish(self, run_id: str, state: str, error: str | None = None, checks: str | None = None) -> None:
        with connect(self.path) as db:
            db.execute(
                "UPDATE runs SET state = ?, error = ?, checks = ?, finished_at = ? WHERE run_id = ?",
                (state, error, checks, _now(), run_id),
            )

    def _owner_file(self, run_id: str) -> Path:
        return self.path.parent / "ui_runs" / f"{run_id}.lock"

    def own(self, run_id: str) -> BinaryIO:
        """Mark `run_id` as this process's until the file returned is closed (`release`): a lock the
        process's end releases, even by kill -9."""
        path = self._owner_file(run_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "ab")  # noqa: SIM115 (held past this call, until `release`)
        fcntl.flock(handle, fcntl.LOCK_EX)
        return handle

    def release(self, run_id: str, owned: BinaryIO) -> None:
        self._owner_file(run_id).unlink(missing_ok=True)
        owned.close()

    def abandon_unfinished(self) -> None:
        """Runs a stopped server left RUNNING: no process owns them any more (`own`). One whose owner
        lives is running, also between its update and its end (the integrity suite, the vacuum),
        when it no longer holds the pipeline lock; the update itself converges when run again."""
        with connect(self.path) as db:
            running = [run_id for (run_id,) in db.execute("SELECT run_id FROM runs WHERE state = 'RUNNING'")]
        for run_id in running:
            with open(self._owner_file(run_id), "ab") as handle:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # its owner lives
                with connect(self.path) as db:
                    db.execute(
                        "UPDATE runs SET state = 'FAILED', error = 'the server stopped while it ran', finished_at = ? "
                        "WHERE run_id = ? AND state = 'RUNNING'",
                        (_now(), run_id),
                    )
            self._owner_file(run_id).unlink(missing_ok=True)

    def runs(self, limit: int = 50) -> list[Run]:
        with connect(self.path) as db:
            rows = db.execute(f"SELECT {RUN_COLUMNS} FROM runs ORDER BY started_at DESC LIMIT ?", (limit,)).fetchall()
        return [_run(row) for row in rows]

    def run(self, run_id: str) -> Run | None:
        with connect(self.path) as db:
            row = db.execute(f"SELECT {RUN_COLUMNS} FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            if row is None:
                return None
            flows = db.execute(
                "SELECT sequence, dataset, state, at FROM run_flows WHERE run_id = ? ORDER BY sequence", (run_id,)
            ).fetchall()
        run = _run(row)
        run.flows = [{"sequence": s, "dataset": d, "state": st, "at": at} for s, d, st, at in flows]
        return run


def _run(row: tuple) -> Run:
    run_id, action, trigger, state, started, finished, operator, datasets, error, sync, checks, report = row
    return Run(
        run_id,
        action,
        trigger,
        state,
        started,
        finished,
        operator,
        orjson.loads(datasets or b"[]"),
        error,
        orjson.loads(sync) if sync else None,
        checks,
        orjson.loads(report) if report else None,
    )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class RunManager:
    """Starts runs in a thread, one at a time; the run's id is its pipeline update's id."""

    def __init__(
        self, settings: Settings, sync: SyncStep | None = None, after_update: AfterUpdate | None = None
    ) -> None:
        self.settings = settings
        self.sync = sync
        self.after_update = after_update
        self.log = RunLog(settings)
        self._guard = threading.Lock()
        self._thread: threading.Thread | None = None
        self._cancel: dict[str, threading.Event] = {}

    def start(self, request: RunRequest) -> str:
        """Start a run; RunRefused when the request is wrong, RunBusy while an update runs."""
        if request.action not in ACTIONS:
            raise RunRefused(f"unknown action {request.action!r}: one of {', '.join(ACTIONS)}")
        if request.trigger not in CAUSES:
            raise RunRefused(f"unknown trigger {request.trigger!r}: one of {', '.join(CAUSES)}")
        if request.action in SELECTIONS:
            if not request.datasets:
                raise RunRefused(f"{ACTIONS[request.action]} needs at least one dataset")
            try:
                load_graph().check_names(list(request.datasets))
            except DeclarationError as error:
                raise RunRefused(str(error)) from None
        if request.action == "sync_update" and self.sync is None:
            raise RunRefused("Sync and update needs Qobrix: set QOBRIX_API_BASE_URL, QOBRIX_API_USER, QOBRIX_API_KEY")
        with self._guard:
            if self._thread is not None and self._thread.is_alive():
                raise RunBusy("an update started here is running; wait for it or cancel it")
            run_id = str(uuid.uuid4())
            lock = pipeline_lock(self.settings.paths, f"update {run_id} (from the pipeline UI)")
            try:
                lock.__enter__()
            except PipelineBusy as error:
                raise RunBusy(str(error)) from None
            owned = self.log.own(run_id)
            try:
                self.log.begin(run_id, request)
                self._cancel[run_id] = threading.Event()
                self._thread = threading.Thread(target=self._execute, args=(run_id, request, lock, owned), daemon=True)
                self._thread.start()
            except BaseException:
                self.log.release(run_id, owned)
                lock.__exit__(None, None, None)
                raise
        return run_id

    def cancel(self, run_id: str) -> bool:
        """Ask a run to stop before its next flow, whichever serving process runs it; whether it runs."""
        return self.log.request_cancel(run_id)

    def running(self) -> str | None:
        """The run this process is running, if any."""
        thread = self._thread
        return next(iter(self._cancel), None) if thread is not None and thread.is_alive() else None

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the running run (tests, shutdown)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def stop(self, timeout: float = 60) -> None:
        """On shutdown: cancel the running run and give it `timeout` seconds to stop between flows."""
        running = self.running()
        if running is not None:
            self.cancel(running)
            self.wait(timeout)

    def _watch_cancel(self, run_id: str, cancel: threading.Event, done: threading.Event) -> None:
        while not done.wait(CANCEL_POLL_SECONDS):
            if self.log.cancel_requested(run_id):
                cancel.set()
                return

    def _execute(self, run_id: str, request: RunRequest, lock: AbstractContextManager, owned: BinaryIO) -> None:
        cancel = self._cancel[run_id]
        done = threading.Event()
        threading.Thread(target=self._watch_cancel, args=(run_id, cancel, done), daemon=True).start()
        state, error, checks, step = "COMPLETED", None, None, None
        try:
            try:
                if request.action == "sync_update":
                    step = "sync"
                    self.log.flow(run_id, "sync", "RUNNING")
                    self.log.sync_done(run_id, self.sync(self.settings))
                    self.log.flow(run_id, "sync", "COMPLETED")
                    step = None
                if cancel.is_set():
                    raise UpdateCanceled("canceled before the update started")
                selected = list(request.datasets)
                with connect(self.log.path) as progress:
                    result = run_update(
                        self.settings.paths,
                        full_refresh=request.action == "full_refresh",
                        refresh=selected if request.action == "refresh_selection" else None,
                        full_refresh_selection=selected if request.action == "full_refresh_selection" else None,
                        progress=lambda dataset, flow_state: self.log.flow(run_id, dataset, flow_state, progress),
                        memory_limit=self.settings.mls2_engine_memory_limit,
                        key_index_cells=self.settings.mls2_engine_key_index_cells,
                        reserve_bytes=self.settings.mls2_min_free_mb * 2**20,
                        cause=CAUSES[request.trigger],
                        cancel=cancel,
                        update_id=run_id,
                        lock=False,
                    )
            finally:
                lock.__exit__(None, None, None)  # taken by `start`, when the run was asked for
            self.log.record_report(run_id, update_report(result))
            # The lock is released: the integrity suite and a vacuum take it for themselves.
            if self.after_update is not None:
                checks = "passed" if self.after_update(self.settings) else "failed"
            settings = self.settings
            maintain_if_due(
                settings.paths, settings.mls2_lakehouse_retention_hours, settings.mls2_landing_retention_days
            )
        except UpdateCanceled as canceled:
            state, error = "CANCELED", str(canceled)
        except PipelineError as failed:
            state, error = "FAILED", str(failed)
        except Exception as failed:  # a run's thread must record every end, whatever it was
            log.exception("run %s failed", run_id)
            state, error = "FAILED", f"{type(failed).__name__}: {failed}"
        finally:
            done.set()
            if step is not None:
                self.log.flow(run_id, step, "FAILED")
            self.log.finish(run_id, state, error, checks)
            self.log.release(run_id, owned)
            self._cancel.pop(run_id, None)
