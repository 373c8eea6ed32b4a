"""How callers wait for the audit writer: a light waiter for threads, and shared timeouts for the
futures of one event loop (one timer per loop instead of one per call)."""

from __future__ import annotations

import asyncio
import math
import threading
from collections import deque
from typing import Any


class Waiter:
    """A one-shot outcome for a thread that waits: lighter than a concurrent Future (no Condition, one
    object for the garbage collector to track instead of five)."""

    __slots__ = ("_done", "outcome")

    def __init__(self) -> None:
        self._done = threading.Lock()
        self._done.acquire()
        self.outcome: Any = None

    def resolve(self, outcome: Any) -> None:
        self.outcome = outcome
        self._done.release()

    def wait(self, timeout: float) -> Any:
        if not self._done.acquire(timeout=timeout):
            raise TimeoutError("the audit entry was not committed in time")
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome


class LoopDeadlines:
    """The timeouts of one event loop's waiting appends, kept by one timer instead of one per call.

    Waiters are resolved in the order they were queued (the writer commits in order), so the done ones
    are dropped from the left after every batch; the timer fires at the earliest deadline it knows and
    fails what is due with TimeoutError. Once nothing waits, it takes itself out of `owner` (so a
    closed loop is not kept alive). Used only on its loop's thread.
    """

    __slots__ = ("armed_at", "deadlines", "loop", "owner", "timer", "waiting")

    def __init__(self, loop: asyncio.AbstractEventLoop, owner: dict[asyncio.AbstractEventLoop, LoopDeadlines]) -> None:
        self.loop = loop
        self.owner = owner
        # Two parallel queues rather than one of pairs: a float is no object the collector tracks.
        self.waiting: deque[asyncio.Future[Any]] = deque()
        self.deadlines: deque[float] = deque()
        self.timer: asyncio.TimerHandle | None = None
        self.armed_at = math.inf

    def add(self, future: asyncio.Future[Any], timeout: float) -> None:
        deadline = self.loop.time() + timeout
        self.waiting.append(future)
        self.deadlines.append(deadline)
        if deadline < self.armed_at:
            self._arm(deadline)

    def _arm(self, deadline: float) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer = self.loop.call_at(deadline, self._expire)
        self.armed_at = deadline

    def _expire(self) -> None:
        self.timer, self.armed_at = None, math.inf
        now = self.loop.time()
        waiting: deque[asyncio.Future[Any]] = deque()
        deadlines: deque[float] = deque()
        for deadline, future in zip(self.deadlines, self.waiting, strict=True):
            if future.done():
                continue
            if deadline <= now:
                future.set_exception(TimeoutError("the audit entry was not committed in time"))
            else:
                waiting.append(future)
                deadlines.append(deadline)
        self.waiting, self.deadlines = waiting, deadlines
        if deadlines:
            self._arm(min(deadlines))
        else:
            self._leave()

    def prune(self) -> None:
        waiting, deadlines = self.waiting, self.deadlines
        while waiting and waiting[0].done():
            waiting.popleft()
            deadlines.popleft()
        if not waiting:
            if self.timer is not None:
                self.timer.cancel()
                self.timer, self.armed_at = None, math.inf
            self._leave()

    def _leave(self) -> None:
        if self.owner.get(self.loop) is self:
            del self.owner[self.loop]


def settle(outcomes: list[tuple[asyncio.Future[Any], Any]], deadlines: LoopDeadlines | None) -> None:
    """Resolve loop futures on their own loop (a caller that timed out has its future done already)."""
    for future, outcome in outcomes:
        if future.done():
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
    if deadlines is not None:
        deadlines.prune()
