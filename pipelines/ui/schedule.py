"""Updates on a schedule, in the serving process: every N minutes (a sync and an update when Qobrix
is configured, else an update), or continuous (an update as soon as a sync, from wherever it ran,
has landed something after the last scheduled or UI update started). What is set in the
UI is kept in its SQLite file and outlives a restart; until then MLS2_SCHEDULE decides. One
serving process schedules (a file lock); the pipeline lock keeps any update from overlapping another.
"""

import fcntl
import logging
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from conf.settings import Settings
from pipelines.ui.database import connect
from pipelines.ui.runs import RunBusy, RunManager, RunRefused, RunRequest

log = logging.getLogger(__name__)

TICK_SECONDS = 2.0
EVERY = re.compile(r"^every (\d{1,4}) minutes?$")


class ScheduleError(ValueError):
    """A schedule that cannot be used; the message says what a valid one looks like."""


@dataclass(frozen=True)
class Schedule:
    mode: str = "off"
    """`off`, `every` (every `minutes`) or `continuous`."""
    minutes: int | None = None

    @classmethod
    def parse(cls, text: str | None) -> "Schedule":
        """`off` (or empty), `every N minutes` (1 to 1440) or `continuous` (MLS2_SCHEDULE's own check
        in conf/settings.py takes the same)."""
        text = (text or "off").strip().lower()
        if text in ("off", "continuous"):
            return cls(text)
        match = EVERY.match(text)
        if match and 1 <= int(match.group(1)) <= 1440:
            return cls("every", int(match.group(1)))
        raise ScheduleError(f"schedule {text!r}: give off, continuous, or every N minutes (N from 1 to 1440)")

    def __str__(self) -> str:
        return f"every {self.minutes} minutes" if self.mode == "every" else self.mode


class Scheduler:
    """Starts scheduled runs from a thread of the serving process."""

    def __init__(self, settings: Settings, runs: RunManager) -> None:
        self.settings = settings
        self.runs = runs
        self.path = settings.paths.ui_state
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock_file = None
        with connect(self.path) as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS schedule (id INTEGER PRIMARY KEY CHECK (id = 1), spec TEXT, set_at TEXT)"
            )

    def schedule(self) -> Schedule:
        """The UI's schedule if one was set there, else MLS2_SCHEDULE."""
        with connect(self.path) as db:
            row = db.execute("SELECT spec FROM schedule WHERE id = 1").fetchone()
        return Schedule.parse(row[0] if row else self.settings.mls2_schedule)

    def set(self, spec: str) -> Schedule:
        chosen = Schedule.parse(spec)
        with connect(self.path) as db:
            db.execute(
                "INSERT INTO schedule VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET spec = excluded.spec, "
                "set_at = excluded.set_at",
                (str(chosen), datetime.now(UTC).isoformat()),
            )
        return chosen

    def start(self) -> bool:
        """Run the scheduler in this process unless another serving process does; whether it runs here."""
        handle = open(self.settings.paths.state / "scheduler.lock", "a+")  # noqa: SIM115 (held while serving)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._lock_file = handle
        self._thread = threading.Thread(target=self._loop, name="mls2-scheduler", daemon=True)
        self._thread.start()
        return True

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._lock_file is not None:
            self._lock_file.close()

    def _loop(self) -> None:
        while not self._stop.wait(TICK_SECONDS):
            try:
                self.tick(datetime.now(UTC))
            except Exception:  # the scheduler outlives one bad tick; the next one tries again
                log.exception("the scheduler's tick failed")

    def tick(self, now: datetime) -> str | None:
        """Start a run if one is due at `now`; its id."""
        schedule = self.schedule()
        if schedule.mode == "off" or not self.due(schedule, now):
            return None
        action = "sync_update" if schedule.mode == "every" and self.runs.sync is not None else "update"
        try:
            return self.runs.start(RunRequest(action, trigger="schedule"))
        except RunBusy:
            return None
        except RunRefused as error:
            log.error("a scheduled update cannot start: %s", error)
            return None

    def due(self, schedule: Schedule, now: datetime) -> bool:
        last = self._last_start()
        if schedule.mode == "every":
            since = last or self._set_at()
            return since is None or now - since >= timedelta(minutes=schedule.minutes)
        newest = self._newest_landing()
        return newest is not None and (last is None or newest > last)

    def _last_start(self) -> datetime | None:
        runs = self.runs.log.runs(limit=1)
        return datetime.fromisoformat(runs[0].started_at) if runs else None

    def _set_at(self) -> datetime | None:
        with connect(self.path) as db:
            row = db.execute("SELECT set_at FROM schedule WHERE id = 1").fetchone()
        return datetime.fromisoformat(row[0]) if row and row[0] else None

    def _newest_landing(self) -> datetime | None:
        """When the last sync's manifest was written (every sync that lands writes one)."""
        manifests = self.settings.paths.landing / "_manifests"
        stamps = [entry.stat().st_mtime for entry in manifests.glob("*.json")] if manifests.exists() else []
        return datetime.fromtimestamp(max(stamps), UTC) if stamps else None
