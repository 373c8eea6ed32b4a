"""How every `gateway` command writes: results to stdout, logs and progress to stderr, JSON on request.

Kept free of heavy imports: `gateway --help` must stay fast.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.container import Container


def jsonable(value: Any) -> Any:
    """Return `value` as plain JSON data: dataclasses as objects, moments as RFC 3339, enums as values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [jsonable(v) for v in value]
        return sorted(items) if isinstance(value, set | frozenset) else items
    return value


def print_json(value: Any) -> None:
    """Write `value` to stdout as one JSON document (for scripts: `--json`)."""
    print(json.dumps(jsonable(value), indent=2, ensure_ascii=False))


SLOW_STEP_SECONDS = 1.0


@contextmanager
def step(what: str, after: float = SLOW_STEP_SECONDS) -> Iterator[None]:
    """Say on stderr what a step is doing once it has taken `after` seconds, and when it is done how long
    it took; a quick step says nothing (progress where a person would wonder, not noise)."""
    started = time.monotonic()
    said = threading.Event()

    def say() -> None:
        said.set()
        print(f"... {what}", file=sys.stderr, flush=True)

    timer = threading.Timer(after, say)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        if said.is_set():
            print(f"    {what}: done in {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)


@contextmanager
def open_container() -> Iterator[Container]:
    """Yield the gateway's parts built from the settings (saying so when that is slow), then close them."""
    from gateway.cli import load_settings
    from gateway.container import build

    with step("loading the configuration, database and keys"):
        container = build(load_settings())
    try:
        yield container
    finally:
        container.close()


def add_json_flag(parser: Any) -> None:
    """Add `--json` (machine-readable stdout) to a list or report command."""
    parser.add_argument("--json", action="store_true", help="write the result as JSON to stdout")


def configure_cli_logging(level: str) -> None:
    """Send every log line of a command to stderr (human-readable), so stdout holds only its result."""
    import logging

    import structlog

    logging.basicConfig(format="%(message)s", level=level.upper(), stream=sys.stderr)
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.dev.ConsoleRenderer(colors=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )
