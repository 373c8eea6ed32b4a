"""Wire notices and evidence into the application: routes, and the outbox delivery task."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from gateway.evidence.parts import evidence_parts

if TYPE_CHECKING:
    from fastapi import FastAPI

    from gateway.container import Container


def install(app: FastAPI) -> None:
    """Add the evidence keys, the notices API, the evidence API and the jurists' pages."""
    from gateway.evidence.api import evidence_router, keys_router, notices_router
    from gateway.evidence.web import router as jurist_pages

    app.include_router(keys_router)
    app.include_router(notices_router)
    app.include_router(evidence_router)
    app.include_router(jurist_pages)


@asynccontextmanager
async def running(container: Container) -> AsyncIterator[None]:
    """Deliver the outbox in the background while the application runs (`outbox_poll_seconds` > 0)."""
    handle = evidence_parts(container).worker_handle()
    handle.start()
    try:
        yield
    finally:
        await handle.stop()
