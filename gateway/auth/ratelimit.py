"""Per-client rate limits: a token bucket per key, timed by the injected clock.

A bucket holds ten seconds' worth of requests (the burst) and refills at the per-minute rate. The
buckets live in the process: with several gateway processes each enforces the limit on its own share.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass

from gateway.clock import Clock


class RateLimited(Exception):
    """Too many requests; `retry_after` is the whole number of seconds until the next one is allowed."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"rate limited; retry after {retry_after} s")
        self.retry_after = retry_after


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    def __init__(self, clock: Clock, max_keys: int = 100_000) -> None:
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._max_keys = max_keys
        self._lock = threading.Lock()

    def take(self, key: str, per_minute: int) -> None:
        """Take one request from `key`'s bucket, or raise RateLimited."""
        rate = per_minute / 60.0
        burst = max(1.0, math.ceil(per_minute / 6))
        now = self._clock.timestamp()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _Bucket(burst, now)
                if len(self._buckets) > self._max_keys:
                    self._buckets.popitem(last=False)
            else:
                self._buckets.move_to_end(key)
                bucket.tokens = min(burst, bucket.tokens + max(0.0, now - bucket.at) * rate)
                bucket.at = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return
            wait = (1.0 - bucket.tokens) / rate
        raise RateLimited(max(1, math.ceil(wait)))

    def reset(self, key: str | None = None) -> None:
        """Refill one bucket, or all."""
        with self._lock:
            if key is None:
                self._buckets.clear()
            else:
                self._buckets.pop(key, None)
