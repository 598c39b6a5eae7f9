"""Rate-limit buckets kept in SQLite for several server processes: one bucket per client between them."""

import threading
from pathlib import Path

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
