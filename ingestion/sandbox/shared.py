"""State shared by sandbox worker processes: the log of `advance` calls and the fault settings.

The sandbox's data is a pure function of (seed, size, the advance calls so far), so
workers stay identical by replaying one append-only log instead of sharing memory.
In a single process the log lives in memory.
"""

import fcntl
import json
import os
import threading
from pathlib import Path

from ingestion.sandbox.faults import FaultConfig, Faults
from ingestion.sandbox.world import Changes, SandboxWorld


class ChangeLog:
    """Ordered `advance` calls: `{"steps": n, "changes": {entity: {kind: count}} | null}`."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path else None
        self._entries: list[dict] = []
        self._lock = threading.Lock()

    def append(self, entry: dict) -> None:
        if self.path is None:
            with self._lock:
                self._entries.append(entry)
            return
        with open(self.path, "a", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            handle.write(json.dumps(entry) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def marker(self) -> int:
        """Changes whenever an entry is appended (cheap to check before every request)."""
        if self.path is None:
            return len(self._entries)
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def entries(self) -> list[dict]:
        if self.path is None:
            with self._lock:
                return list(self._entries)
        if not self.path.exists():
            return []
        with open(self.path, encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_SH)
            return [json.loads(line) for line in handle if line.strip()]


class SharedSandbox:
    """One worker's view: its world, caught up with the log before each request, and the faults."""

    def __init__(
        self,
        world: SandboxWorld,
        *,
        log: ChangeLog | None = None,
        faults_file: Path | None = None,
        faults: Faults | None = None,
    ) -> None:
        self.world = world
        self.log = log or ChangeLog()
        self.faults = faults or Faults()
        self.faults_file = Path(faults_file) if faults_file else None
        self._applied = 0
        self._marker = 0
        self._faults_stamp: int | None = None
        self._lock = threading.Lock()

    def catch_up(self) -> None:
        """Replay advance calls other workers logged, and pick up new fault settings."""
        with self._lock:
            marker = self.log.marker()
            if marker != self._marker:
                entries = self.log.entries()
                for entry in entries[self._applied :]:
                    changes = entry.get("changes")
                    plan = {entity: Changes(**counts) for entity, counts in changes.items()} if changes else None
                    self.world.advance(steps=entry.get("steps", 1), changes=plan)
                self._applied, self._marker = len(entries), marker
            if self.faults_file is not None and self.faults_file.exists():
                stamp = self.faults_file.stat().st_mtime_ns
                if stamp != self._faults_stamp:
                    self.faults.configure(FaultConfig(**json.loads(self.faults_file.read_text())))
                    self._faults_stamp = stamp

    def advance(self, *, steps: int = 1, changes: dict | None = None):
        """Log an advance call for every worker, then apply it here; returns the last step's report."""
        with self._lock:
            self.log.append({"steps": steps, "changes": changes})
        before = self.world.step
        self.catch_up()
        return self.world.last_report if self.world.step > before else None

    def configure_faults(self, config: FaultConfig) -> None:
        config.validate()
        if self.faults_file is not None:
            self.faults_file.write_text(json.dumps(config.public()))
        self.faults.configure(config)
