"""The scheduled retention run inside the server: it runs on its interval and survives a failed run."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import datetime

from gateway.lifecycle.events import Actor
from gateway.retention.run import RetentionBusy, RunOutcome
from gateway.retention.schedule import default_authority, scheduled
from tests.conftest import AMS, Gateway


class CountingRunner:
    """Stands in for the RetentionRunner: counts runs, fails the first, reports busy the second."""

    def __init__(self) -> None:
        self.calls: list[tuple[Actor, str]] = []
        self.lock = threading.Lock()

    def run(self, actor: Actor, authority: str) -> RunOutcome:
        with self.lock:
            self.calls.append((actor, authority))
            n = len(self.calls)
        if n == 1:
            raise RuntimeError("database went away")
        if n == 2:
            raise RetentionBusy("another run holds the lease")
        return RunOutcome("run", "completed", 0, 0, 0, 0, None)


def test_the_schedule_runs_again_after_a_failed_or_busy_run_and_stops_with_the_server() -> None:
    runner = CountingRunner()

    async def serve_for_a_while() -> None:
        async with scheduled(runner, 0.05, "the retention rules"):  # type: ignore[arg-type]
            deadline = time.monotonic() + 60
            while len(runner.calls) < 3:  # a failed run, a busy one, and one after them
                assert time.monotonic() < deadline, runner.calls
                await asyncio.sleep(0.05)
        count = len(runner.calls)
        await asyncio.sleep(0.2)
        assert len(runner.calls) == count  # stopped with the server

    asyncio.run(serve_for_a_while())
    assert len(runner.calls) >= 3
    actor, authority = runner.calls[-1]
    assert actor.acting_user == "gateway.retention"
    assert actor.organisation is None
    assert authority == "the retention rules"


def test_an_interval_of_zero_schedules_nothing() -> None:
    runner = CountingRunner()

    async def serve() -> None:
        async with scheduled(runner, 0, "x"):  # type: ignore[arg-type]
            await asyncio.sleep(0.1)

    asyncio.run(serve())
    assert runner.calls == []


def test_the_scheduled_run_destroys_what_is_due_in_the_running_gateway(gateway: Gateway) -> None:
    gateway.register()
    gateway.clock.set(datetime(2025, 7, 1, tzinfo=AMS))
    assert gateway.container.lifecycle is not None
    runner = gateway.container.lifecycle.retention
    authority = default_authority("lvv", gateway.container.policy.version)

    async def serve() -> None:
        async with scheduled(runner, 0.05, authority):
            deadline = time.monotonic() + 60
            while runner.plan().due != () and time.monotonic() < deadline:
                await asyncio.sleep(0.05)

    asyncio.run(serve())
    assert runner.plan().due == ()
    assert "policy version sha256:" in authority
