"""The pipeline lock: one update (or vacuum) at a time on a data directory."""

import fcntl
import os
from datetime import UTC, datetime

from conf.settings import DataPaths
from pipelines._engine.errors import PipelineBusy


class UpdateLock:
    """An exclusive, non-blocking lock on the pipeline; released when the process ends, even by kill -9."""

    def __init__(self, paths: DataPaths, holder: str) -> None:
        self.path = paths.state / "pipeline.lock"
        self.holder = holder
        """What holds the lock (`update <id>`, `vacuum <id>`, ...), shown to whoever finds it taken."""

    def __enter__(self) -> "UpdateLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = open(self.path, "a+")
        try:
            fcntl.flock(self._handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._handle.seek(0)
            holder = self._handle.read().strip() or "unknown"
            self._handle.close()
            raise PipelineBusy(f"the pipeline is busy ({holder}); wait for it to finish, then run again") from None
        self._handle.seek(0)
        self._handle.truncate()
        self._handle.write(f"{self.holder}, pid {os.getpid()}, since {datetime.now(UTC).isoformat()}")
        self._handle.flush()
        return self

    def __exit__(self, *_: object) -> None:
        self._handle.seek(0)
        self._handle.truncate()
        fcntl.flock(self._handle, fcntl.LOCK_UN)
        self._handle.close()
