"""What operators and partner systems ask of a running gateway: `/health`, `/ready`, `/metrics`, and the
headers every response carries (`API-Version`; `Gateway-Policy-Time` where the policy clock is simulated).

`/health` is liveness: the process answers, with the versions in force and both clocks. `/ready` asks
the parts a request needs (the database, the audit writer, the sealer) and answers 503 when one is
not ready, so a load balancer sends no traffic to a gateway that would refuse it. `/metrics` is the
Prometheus text format from `prometheus-client`, on a registry of this application's own.

Labels hold only route templates, methods, status codes and decision outcomes: never a path (it may
hold a pseudonym), an organisation, a user or a purpose. `tests/integration/test_operations.py`
scrapes after traffic and checks that.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from fastapi import APIRouter, FastAPI
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlalchemy import select, text
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway import __version__
from gateway.api.oversight_schemas import HealthOut, ReadinessCheck, ReadyOut
from gateway.api.problems import Problem
from gateway.audit.sealer import latest_checkpoint
from gateway.clock import Clock, SystemClock
from gateway.container import Container
from gateway.outbox.repository import Outbox
from gateway.store.tables import audit_head

API_VERSION_HEADER = "API-Version"
POLICY_TIME_HEADER = "Gateway-Policy-Time"
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def iso(moment: datetime) -> str:
    """Return a moment as RFC 3339 in UTC with a Z."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def simulated(clock: Clock) -> bool:
    """Return whether the policy clock is not real time (demo, rehearsal, a test's fixed clock)."""
    return not isinstance(clock, SystemClock)


class Metrics:
    """The gateway's Prometheus metrics, on a registry of one application."""

    def __init__(self, container: Container) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "gateway_http_requests",
            "HTTP requests by route template, method and status",
            ["route", "method", "status"],
            registry=r,
        )
        self.request_seconds = Histogram(
            "gateway_http_request_duration_seconds",
            "HTTP request duration by route template",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.decision_seconds = Histogram(
            "gateway_decision_duration_seconds",
            "From the policy decision to its durably committed audit entry, by outcome",
            ["outcome"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.audit_batch_size = Histogram(
            "gateway_audit_batch_entries",
            "Entries per committed audit batch",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048),
            registry=r,
        )
        self.audit_commit_seconds = Histogram(
            "gateway_audit_commit_duration_seconds",
            "Time to commit one audit batch",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.checkpoint_age = Gauge(
            "gateway_audit_checkpoint_age_seconds",
            "Age of the latest signed checkpoint on the policy clock (-1: none yet)",
            registry=r,
        )
        self.unsealed = Gauge(
            "gateway_audit_unsealed_entries", "Audit entries not yet covered by a signed checkpoint", registry=r
        )
        self.outbox = Gauge(
            "gateway_outbox_notices", "Outbox notices by status (backlog: pending)", ["status"], registry=r
        )
        self._container = container
        container.audit.observer = self._audit_batch
        container.exchange.authorizer.observer = self._decision

    def _audit_batch(self, size: int, seconds: float) -> None:
        self.audit_batch_size.observe(size)
        self.audit_commit_seconds.observe(seconds)

    def _decision(self, outcome: str, seconds: float) -> None:
        self.decision_seconds.labels(outcome).observe(seconds)

    def collect_state(self) -> None:
        """Read the gauges that are state in the database (checkpoint age, backlog) at scrape time."""
        container = self._container
        with container.db.read.connect() as conn:
            checkpoint = latest_checkpoint(conn)
            head = int(conn.execute(select(audit_head.c.seq).where(audit_head.c.id == 1)).scalar() or 0)
            counts = Outbox.counts(conn)
        if checkpoint is None:
            self.checkpoint_age.set(-1)
            self.unsealed.set(head)
        else:
            age = (container.clock.now() - checkpoint.checkpoint.time).total_seconds()
            self.checkpoint_age.set(max(age, 0.0))
            self.unsealed.set(max(head - checkpoint.checkpoint.size, 0))
        for status in ("pending", "delivered", "failed", *counts):
            self.outbox.labels(status).set(counts.get(status, 0))


def _route(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"  # never the raw path: it may hold a pseudonym


class ResponseHeadersMiddleware:
    """Put `API-Version` on every response (NL API Design Rules), the policy clock's reading where it is
    simulated, and count every request in the metrics by its route template."""

    def __init__(self, app: ASGIApp, container: Container, metrics: Metrics) -> None:
        self.app = app
        self.clock = container.clock
        self.simulated = simulated(container.clock)
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = [*message.get("headers", []), (b"api-version", __version__.encode())]
                if self.simulated:
                    headers.append((POLICY_TIME_HEADER.lower().encode(), iso(self.clock.now()).encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            route = _route(scope)
            self.metrics.requests.labels(route, scope["method"], str(status)).inc()
            self.metrics.request_seconds.labels(route).observe(time.perf_counter() - started)


def _check(ok: bool, detail: str) -> ReadinessCheck:
    return ReadinessCheck(ok=ok, detail=detail)


def readiness(container: Container) -> ReadyOut:
    """Ask the database, the audit writer and the sealer whether a request could be served now."""
    checks: dict[str, ReadinessCheck] = {}
    try:
        with container.db.write.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = _check(True, "reachable")
    except Exception as exc:  # any driver error: not ready, and say which kind
        checks["database"] = _check(False, f"unreachable ({type(exc).__name__})")
    writer = container.audit.alive
    checks["audit_writer"] = _check(writer, "running" if writer else "stopped")
    sealer = container.sealer
    if sealer is None:
        checks["sealer"] = _check(True, "no checkpoint key in this process (another process seals)")
    else:
        running = sealer.running
        leader = "elected" if sealer.is_leader else "standing by"
        checks["sealer"] = _check(running, f"running, {leader}" if running else "stopped")
    return ReadyOut(ready=all(c.ok for c in checks.values()), checks=checks)


def router(container: Container, metrics: Metrics) -> APIRouter:
    """Return the router of /health, /ready and /metrics."""
    api = APIRouter(tags=["operations"])

    @api.get("/health", summary="Liveness, the versions in force and the gateway's clocks", response_model=HealthOut)
    def health() -> HealthOut:
        policy_now = container.clock.now()
        return HealthOut(
            status="ok",
            version=__version__,
            policy_version=container.policy.version,
            config=container.policy.config.meta.name,
            time=iso(datetime.now(UTC)),
            policy_time=iso(policy_now),
            clock="simulated" if simulated(container.clock) else "real",
        )

    @api.get("/ready", summary="Readiness: the database, the audit writer and the sealer", response_model=ReadyOut)
    def ready() -> ReadyOut:
        report = readiness(container)
        if not report.ready:
            failed = ", ".join(name for name, check in report.checks.items() if not check.ok)
            raise Problem(
                503,
                "not_ready",
                "The gateway is not ready.",
                f"Not ready: {failed}.",
                headers={"Retry-After": "5"},
                checks=report.model_dump()["checks"],
            )
        return report

    @api.get(
        "/metrics",
        summary="Prometheus metrics (no personal data or pseudonyms in labels)",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}}}},
    )
    def prometheus() -> Response:
        metrics.collect_state()
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return api


def install(app: FastAPI, container: Container) -> None:
    """Add the operations endpoints and the response-headers (and metrics) middleware."""
    metrics = Metrics(container)
    app.state.metrics = metrics
    app.include_router(router(container, metrics))
    app.add_middleware(ResponseHeadersMiddleware, container=container, metrics=metrics)
