"""Per-client rate limits: a token bucket per client, refilled continuously, in this process."""

import math
import threading
import time


class RateLimiter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}

    def acquire(self, client_id: str, per_minute: int) -> float:
        """0 if the request may proceed, else the seconds until it may (the `Retry-After`)."""
        rate = per_minute / 60.0
        now = time.monotonic()
        with self._lock:
            tokens, updated = self._buckets.get(client_id, (float(per_minute), now))
            tokens = min(float(per_minute), tokens + (now - updated) * rate)
            if tokens >= 1:
                self._buckets[client_id] = (tokens - 1, now)
                return 0.0
            self._buckets[client_id] = (tokens, now)
            return max(1.0, math.ceil((1 - tokens) / rate))
