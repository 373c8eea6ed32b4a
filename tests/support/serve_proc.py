"""Run a gateway as its own process (for multi-process tests): settings from GATEWAY_* variables,
the clock fixed at TEST_CLOCK_AT (ISO 8601), the port from TEST_PORT."""

from __future__ import annotations

import os
from datetime import datetime

import uvicorn

from gateway.api.app import create_app
from gateway.clock import FixedClock
from gateway.settings import Settings


def main() -> None:
    clock = FixedClock(datetime.fromisoformat(os.environ["TEST_CLOCK_AT"]))
    app = create_app(Settings(), clock)
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ["TEST_PORT"]), log_level="error", access_log=False)


if __name__ == "__main__":
    main()
