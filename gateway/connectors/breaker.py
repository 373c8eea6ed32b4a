"""A circuit breaker per brokered source: after N failures in a row, fail fast for a while."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class CircuitBreaker:
    """Closed: calls pass. Open: calls fail at once until `reset_seconds` passed. Then one trial call
    (half-open): its success closes the breaker, its failure opens it again."""

    def __init__(self, failures: int, reset_seconds: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._threshold = failures
        self._reset = reset_seconds
        self._now = monotonic
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._trial = False

    @property
    def state(self) -> str:
        """Return closed, open or half_open."""
        with self._lock:
            if self._opened_at is None:
                return "closed"
            return "half_open" if self._now() - self._opened_at >= self._reset else "open"

    def allow(self) -> bool:
        """Return whether a call may go out now (in half-open state: one trial at a time)."""
        with self._lock:
            if self._opened_at is None:
                return True
            if self._now() - self._opened_at < self._reset or self._trial:
                return False
            self._trial = True
            return True

    def succeeded(self) -> None:
        with self._lock:
            self._failures, self._opened_at, self._trial = 0, None, False

    def failed(self) -> None:
        with self._lock:
            self._failures += 1
            self._trial = False
            if self._opened_at is not None or self._failures >= self._threshold:
                self._opened_at = self._now()
