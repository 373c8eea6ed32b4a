"""Structured logging: JSON lines with dotted event names; never tokens, never record contents."""

from __future__ import annotations

import logging
import sys

import structlog


def configure_logging(level: str = "info") -> None:
    """Send structlog events as JSON lines to stderr at `level`."""
    logging.basicConfig(format="%(message)s", level=level.upper(), stream=sys.stderr)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),  # stdout is a command's result
        cache_logger_on_first_use=True,
    )
