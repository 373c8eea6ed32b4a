"""The FastAPI application factory."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from gateway import __version__
from gateway.api import audit_log, docs, exchange, officer, openapi, operations, problem_types, problems
from gateway.api import oauth as oauth_endpoints
from gateway.api.body_limit import BodyLimitMiddleware
from gateway.api.strict_json import BodyBounds
from gateway.api.tracing import TraceMiddleware
from gateway.clock import Clock
from gateway.connectors import api as connector_api
from gateway.container import Container, build
from gateway.evidence import wiring as evidence
from gateway.lifecycle import wiring as lifecycle
from gateway.monitor import api as monitor_api
from gateway.monitor import web as monitor_pages
from gateway.settings import Settings
from gateway.web import routes as officer_pages

DESCRIPTION = """
Purpose-bound exchange of LVV participant records. Every data request carries a bearer access
token, the `Processing-Purpose`, `Acting-User` and `Acting-Role` headers, and optionally a W3C
`traceparent`. Every decision, permit or deny, is durably logged before any data is released.
"""


def create_app(
    settings: Settings | None = None, clock: Clock | None = None, container: Container | None = None
) -> FastAPI:
    """Return the gateway application; builds its parts from `settings` unless `container` is given."""
    settings = settings or Settings()
    owned = container is None
    built = container or build(settings, clock)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The heap built at start (modules, schemas, the policy, the container) lives as long as the
        # process: kept out of the cyclic collector, whose full collections otherwise scan all of it and
        # stall the event loop for 100 ms and more (a p99 event under load). Given back at shutdown.
        # (No collection first: it would cost as much once per start, and in every test's app.)
        gc.freeze()
        try:
            async with lifecycle.running(built), evidence.running(built):  # retention run; outbox delivery
                try:
                    yield
                finally:
                    if built.exchange.sources is not None:
                        await built.exchange.sources.aclose()  # the connectors' HTTP clients, on this loop
        finally:
            gc.unfreeze()
        if owned:
            built.close()

    app = FastAPI(
        title="LVV purpose-bound exchange gateway",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served by gateway.api.docs from packaged assets
        redoc_url=None,
    )
    app.state.container = built
    problems.install(app)
    app.add_middleware(openapi.StrictQueryMiddleware, gateway=app)  # only the query the document names
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=built.settings.max_request_body_bytes,
        larger={"/v1/imports/": built.settings.max_import_bytes},
    )
    app.add_middleware(TraceMiddleware)  # outermost: the 413 carries the trace too
    lifecycle.install(app, built)  # rehearsal mode: banner on every response, clock endpoints
    exchange.install(app)  # the plain read route first, then the documented exchange routes
    app.include_router(connector_api.router)  # file uploads (/v1/imports)
    app.include_router(oauth_endpoints.router)  # token, introspection, JWKS, metadata
    app.include_router(audit_log.router)
    app.include_router(officer.router)  # privacy-officer query API (/v1/officer)
    app.include_router(officer_pages.router)  # privacy-officer pages (/officer)
    app.include_router(monitor_api.router)  # steering monitor API (/v1/monitor)
    app.include_router(monitor_pages.router)  # steering monitor page (/monitor)
    evidence.install(app)  # evidence keys, notices and acks, evidence API, jurists' pages (/jurist)

    operations.install(app, built)  # /health, /ready, /metrics; API-Version and policy-time headers
    app.include_router(problem_types.router)  # /problems/{code}: the page each problem's `type` names
    docs.install(app)  # /docs from assets shipped in a package (no CDN)

    bounds = BodyBounds(built.settings.max_json_depth, built.settings.max_string_length)
    openapi.install(app, built.policy.config, bounds)  # after every router: it documents them all
    return app
