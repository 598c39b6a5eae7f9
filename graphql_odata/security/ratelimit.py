"""Per-client rate limits: a token bucket per client, refilled continuously; kept in this process, or
in SQLite when several server processes must share them."""

import itertools
import math
import sqlite3
import threading
import time
from pathlib import Path

FULL_AFTER_SECONDS = 60.0
"""A bucket left alone this long is full again, the same as no bucket: it can be forgotten."""
MAX_BUCKETS = 10_000
"""Buckets kept in memory before the full ones are forgotten (token attempts make one per address)."""
PRUNE_EVERY = 1_000
"""Acquires between two removals of full buckets from the shared file."""


class RateLimitUnavailable(RuntimeError):
    """The shared rate-limit file cannot be read or written; the message says why."""


def _take(tokens: float, updated: float, per_minute: int, now: float) -> tuple[float, float]:
    """The bucket refilled to `now` with one request taken if it can be: (tokens left, seconds to wait,
    0 when the request may proceed)."""
    rate = per_minute / 60.0
    tokens = min(float(per_minute), tokens + max(0.0, now - updated) * rate)
    if tokens >= 1:
        return tokens - 1, 0.0
    return tokens, max(1.0, math.ceil((1 - tokens) / rate))


class RateLimiter:
    """Buckets in this process: for a single server process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}

    def acquire(self, client_id: str, per_minute: int) -> float:
        """0 if the request may proceed, else the seconds until it may (the `Retry-After`)."""
        now = time.monotonic()
        with self._lock:
            if len(self._buckets) >= MAX_BUCKETS:
                idle = [key for key, (_, updated) in self._buckets.items() if now - updated >= FULL_AFTER_SECONDS]
                for key in idle:
                    del self._buckets[key]
            tokens, updated = self._buckets.get(client_id, (float(per_minute), now))
            tokens, wait = _take(tokens, updated, per_minute, now)
            self._buckets[client_id] = (tokens, now)
            return wait


class SharedRateLimiter:
    """Buckets in a SQLite file, taken in one write transaction each: several server processes
    (`MLS2_API_WORKERS`) enforce one limit per client between them."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._acquires = itertools.count(1)

    def _connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, timeout=10, isolation_level=None)
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = OFF")
            connection.execute(
                "CREATE TABLE IF NOT EXISTS buckets "
                "(client_id TEXT PRIMARY KEY, tokens REAL NOT NULL, updated REAL NOT NULL)"
            )
            self._local.connection = connection
        return connection

    def acquire(self, client_id: str, per_minute: int) -> float:
        """0 if the request may proceed, else the seconds until it may (the `Retry-After`); a
        RateLimitUnavailable when the file cannot be used (locked too long, not writable)."""
        try:
            connection = self._connection()
            with connection:
                connection.execute("BEGIN IMMEDIATE")
                now = time.time()
                row = connection.execute(
                    "SELECT tokens, updated FROM buckets WHERE client_id = ?", (client_id,)
                ).fetchone()
                tokens, wait = _take(*(row or (float(per_minute), now)), per_minute, now)
                if next(self._acquires) % PRUNE_EVERY == 0:
                    connection.execute("DELETE FROM buckets WHERE updated < ?", (now - FULL_AFTER_SECONDS,))
                connection.execute(
                    "INSERT INTO buckets VALUES (?, ?, ?) "
                    "ON CONFLICT (client_id) DO UPDATE SET tokens = excluded.tokens, updated = excluded.updated",
                    (client_id, tokens, now),
                )
        except sqlite3.Error as error:
            raise RateLimitUnavailable(f"rate limits in {self.path} cannot be checked: {error}") from None
        return wait
