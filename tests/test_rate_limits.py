"""Rate-limit buckets kept in SQLite for several server processes: one bucket per client between them."""

import threading
from pathlib import Path

import pytest

from graphql_odata.security import ratelimit
from graphql_odata.security.ratelimit import RateLimiter, SharedRateLimiter


def test_two_processes_worth_of_limiters_share_one_bucket_per_client(tmp_path: Path) -> None:
    path = tmp_path / "state" / "deeper" / "rate_limits.sqlite"
    first, second = SharedRateLimiter(path), SharedRateLimiter(path)
    assert [first.acquire("acme", 2), second.acquire("acme", 2)] == [0.0, 0.0]
    assert 29.0 <= second.acquire("acme", 2) <= 30.0, "a 2-per-minute client's third request waits half a minute"
    assert first.acquire("other", 2) == 0.0


def test_a_limiter_keeps_one_connection_per_thread(tmp_path: Path) -> None:
    limiter = SharedRateLimiter(tmp_path / "rate_limits.sqlite")
    mine = limiter._connection()
    assert limiter._connection() is mine
    theirs = []
    worker = threading.Thread(target=lambda: theirs.append(limiter._connection()))
    worker.start()
    worker.join()
    assert theirs[0] is not mine


def test_the_in_process_limiter_refills_and_says_how_long_to_wait() -> None:
    limiter = RateLimiter()
    assert [limiter.acquire("acme", 60) for _ in range(60)] == [0.0] * 60
    assert limiter.acquire("acme", 60) == 1.0


class FrozenClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_refills_at_its_rate_and_its_last_token_is_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FrozenClock()
    monkeypatch.setattr(ratelimit.time, "monotonic", clock)
    limiter = RateLimiter()
    assert [limiter.acquire("acme", 120) for _ in range(120)] == [0.0] * 120, "the 120th token is there to take"
    assert limiter.acquire("acme", 120) == 1.0
    clock.now += 0.6  # two tokens a second: 1.2 tokens
    assert limiter.acquire("acme", 120) == 0.0
    assert limiter.acquire("acme", 120) == 1.0, "0.2 tokens left, 0.4 s short of the next: at least a second"


def test_full_buckets_are_forgotten_once_there_are_many(monkeypatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(ratelimit.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(ratelimit, "MAX_BUCKETS", 3)
    limiter = ratelimit.RateLimiter()
    for key in ("a", "b"):
        limiter.acquire(key, 1)
    clock[0] += 61
    limiter.acquire("c", 1)
    assert limiter.acquire("c", 1) > 0
    limiter.acquire("d", 1)
    assert set(limiter._buckets) == {"c", "d"}
    assert limiter.acquire("a", 1) == 0


def test_full_buckets_are_removed_from_the_shared_file(tmp_path, monkeypatch) -> None:
    import sqlite3

    clock = [1000.0]
    monkeypatch.setattr(ratelimit.time, "time", lambda: clock[0])
    monkeypatch.setattr(ratelimit, "PRUNE_EVERY", 3)
    limiter = ratelimit.SharedRateLimiter(tmp_path / "limits.sqlite")
    limiter.acquire("old", 1)
    clock[0] += 61
    limiter.acquire("new", 1)
    assert limiter.acquire("new", 1) > 0
    with sqlite3.connect(tmp_path / "limits.sqlite") as connection:
        kept = {row[0] for row in connection.execute("SELECT client_id FROM buckets")}
    assert kept == {"new"}
