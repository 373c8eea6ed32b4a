"""Time, injected: every decision, log entry and schedule reads the clock it was given."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """Return the current instant, timezone-aware UTC."""
        ...

    def timestamp(self) -> float:
        """Return the current instant as POSIX seconds."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        """Return the current instant, timezone-aware UTC."""
        return datetime.now(UTC)

    def timestamp(self) -> float:
        """Return the current instant as POSIX seconds."""
        return time.time()


class FixedClock:
    """A clock that stands still until it is set or advanced (tests, rehearsals)."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FixedClock needs an aware datetime")
        self._at = at.astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """Return the instant the clock stands at."""
        with self._lock:
            return self._at

    def timestamp(self) -> float:
        """Return the instant the clock stands at as POSIX seconds."""
        return self.now().timestamp()

    def set(self, at: datetime) -> None:
        """Move the clock to `at` (aware)."""
        with self._lock:
            self._at = at.astimezone(UTC)

    def advance(self, delta: timedelta) -> None:
        """Move the clock forward by `delta`."""
        with self._lock:
            self._at += delta


class SimulatedClock:
    """A clock that started at `start` at real POSIX time `anchor` and runs on at real speed.

    Used for demos and rehearsals only; the settings refuse it outside those modes.
    """

    def __init__(self, start: datetime, anchor: float | None = None) -> None:
        if start.tzinfo is None:
            raise ValueError("SimulatedClock needs an aware datetime")
        self._offset = start.timestamp() - (time.time() if anchor is None else anchor)

    def now(self) -> datetime:
        """Return the simulated instant, timezone-aware UTC."""
        return datetime.fromtimestamp(self.timestamp(), UTC)

    def timestamp(self) -> float:
        """Return the simulated instant as POSIX seconds."""
        return time.time() + self._offset

    def describe(self) -> str:
        """Return a one-line statement that this clock is simulated."""
        return f"simulated clock, now {self.now().isoformat(timespec='seconds')}"
