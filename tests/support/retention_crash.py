"""Run one retention run as its own process and end that process abruptly (os._exit, as a kill would)
right after the step named by TEST_CRASH_AFTER ("destroyed", "logged"). Settings from GATEWAY_* variables,
the clock fixed at TEST_CLOCK_AT (ISO 8601), one participant per transaction."""

from __future__ import annotations

import os
from datetime import datetime

from gateway.clock import FixedClock
from gateway.container import build
from gateway.lifecycle.events import Actor
from gateway.settings import Settings

KILLED = 137


def main() -> None:
    clock = FixedClock(datetime.fromisoformat(os.environ["TEST_CLOCK_AT"]))
    container = build(Settings(), clock)
    assert container.lifecycle is not None
    runner = container.lifecycle.retention
    crash_after = os.environ["TEST_CRASH_AFTER"]
    seen = 0

    def step(name: str) -> None:
        nonlocal seen
        if name == crash_after:
            seen += 1
            if seen == int(os.environ.get("TEST_CRASH_AT_BATCH", "1")):
                os._exit(KILLED)  # no finally, no cleanup: what a SIGKILL leaves

    runner.after_step = step
    runner.run(Actor("amsterdam", "archivist.1", "jurist"), os.environ["TEST_AUTHORITY"], batch=1)
    os._exit(0)  # the crash point was never reached


if __name__ == "__main__":
    main()
