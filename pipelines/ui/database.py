"""The pipeline UI's own state: one SQLite file under MLS2_DATA_DIR/state, shared by the serving
processes (WAL, so pages read while an update writes its progress)."""

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path


@contextmanager
def connect(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection in autocommit mode, closed on leaving. The file holds live session ids: it is
    made readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.touch(mode=0o600)
    with closing(sqlite3.connect(path, timeout=10, isolation_level=None)) as db:
        db.execute("PRAGMA journal_mode=WAL")
        yield db
