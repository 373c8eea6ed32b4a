"""The scheduled retention run inside the server: an asyncio task that runs the retention run in a thread."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import structlog

from gateway.lifecycle.events import Actor
from gateway.retention.run import RetentionBusy, RetentionRunner

log = structlog.get_logger("gateway.retention")


def default_authority(config_name: str, policy_version: str) -> str:
    """Return the authority a scheduled run names when none is configured: the adopted retention rules."""
    return f"Retention rules of configuration '{config_name}' (retention.yaml), policy version {policy_version}"


async def run_periodically(runner: RetentionRunner, interval: float, authority: str) -> None:
    """Run the retention run every `interval` seconds until cancelled; a failed run is retried next time."""
    while True:
        await asyncio.sleep(interval)
        try:
            outcome = await asyncio.to_thread(runner.run, Actor.scheduler(), authority)
        except RetentionBusy:
            log.info("retention.schedule.skipped", reason="another run holds the lease")
        except Exception as exc:  # the next run continues where this one stopped
            log.error("retention.schedule.failed", error=type(exc).__name__)
        else:
            if outcome.keys_destroyed:
                log.info("retention.schedule.ran", run_id=outcome.run_id, keys=outcome.keys_destroyed)


@contextlib.asynccontextmanager
async def scheduled(runner: RetentionRunner | None, interval: float, authority: str) -> AsyncIterator[None]:
    """Run the schedule for the lifetime of the `async with` block (nothing when interval is 0)."""
    if runner is None or interval <= 0:
        yield
        return
    task = asyncio.create_task(run_periodically(runner, interval, authority), name="retention-schedule")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
