"""Rehearsal mode over HTTP: every response says it is a rehearsal; jurists can read and step the clock."""

from __future__ import annotations

import html
from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.api.deps import ContainerDep, get_principal
from gateway.api.guards import audit_unavailable, oversight_guard
from gateway.api.problems import Problem
from gateway.api.schemas import problems
from gateway.api.strict_json import StrictJsonRoute
from gateway.audit.writer import AuditUnavailable
from gateway.exchange.authorize import OversightGrant
from gateway.lifecycle.rehearsal import RehearsalClock
from gateway.policies.model import OversightAction

HEADER = b"gateway-rehearsal"
STEP_EVENT = "rehearsal.clock_step"


class RehearsalMiddleware:
    """Puts `Gateway-Rehearsal` on every response, a `rehearsal` member in every JSON object, and a
    banner at the top of every HTML page."""

    def __init__(self, app: ASGIApp, clock: RehearsalClock) -> None:
        self.app = app
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        statement = self.clock.describe()
        start: Message | None = None
        body = bytearray()
        kind = ""

        async def rewrite(message: Message) -> None:
            nonlocal start, kind
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != HEADER]
                headers.append((HEADER, statement.encode("latin-1", "replace")))
                content_type = next((v for k, v in headers if k.lower() == b"content-type"), b"").decode("latin-1")
                kind = "json" if "json" in content_type else "html" if "text/html" in content_type else ""
                message = {**message, "headers": headers}
                if not kind:
                    await send(message)
                    return
                start = message
                return
            if message["type"] != "http.response.body" or start is None:
                await send(message)
                return
            body.extend(message.get("body", b""))
            if message.get("more_body", False):
                return
            new = _mark(bytes(body), kind, statement)
            headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
            headers.append((b"content-length", str(len(new)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": new, "more_body": False})

        await self.app(scope, receive, rewrite)


def _mark(body: bytes, kind: str, statement: str) -> bytes:
    if kind == "json":
        try:
            data: Any = orjson.loads(body)
        except orjson.JSONDecodeError:
            return body
        if isinstance(data, dict):
            return orjson.dumps({"rehearsal": statement, **data})
        return body
    banner = (
        '<div role="alert" class="rehearsal-banner" style="background:#ffd400;color:#000;padding:.5em 1em;'
        f'font-weight:bold">{html.escape(statement)}. Nothing here is real.</div>'
    ).encode()
    lower = body.lower()
    at = lower.find(b"<body")
    if at < 0:
        return banner + body
    close = body.find(b">", at)
    return body[: close + 1] + banner + body[close + 1 :]


router = APIRouter(
    prefix="/v1/rehearsal",
    tags=["rehearsal"],
    dependencies=[Depends(get_principal)],
    route_class=StrictJsonRoute,
    responses=problems(404, 409),
)


class StepClock(BaseModel):
    to: datetime = Field(description="The simulated moment to step to, with its offset (never back)")
    running: bool | None = Field(default=None, description="Run on from there (true) or stand (false)")


def _clock(request: Request) -> RehearsalClock:
    clock = request.app.state.container.clock
    if not isinstance(clock, RehearsalClock):
        raise Problem(404, "not_found", "Not in rehearsal mode.")
    return clock


ClockDep = Annotated[RehearsalClock, Depends(_clock)]


@router.get("/clock", summary="The rehearsal's simulated clock")
def read_clock(clock: ClockDep) -> dict[str, Any]:
    return {"now": clock.now().isoformat(), "running": clock.running, "copy_of": clock.copy_of}


RehearsalClockGrant = Annotated[OversightGrant, Depends(oversight_guard(OversightAction.REHEARSAL_CLOCK, STEP_EVENT))]


@router.post("/clock", summary="Step the rehearsal's simulated clock forward (jurists)")
def step_clock(body: StepClock, grant: RehearsalClockGrant, container: ContainerDep, clock: ClockDep) -> dict[str, Any]:
    if body.to.tzinfo is None:
        raise Problem(422, "naive_moment", "Give the moment with its time zone offset.")
    before = clock.now()
    if body.to < before:
        raise Problem(
            409, "clock_backwards", f"The rehearsal clock never goes back (it stands at {before.isoformat()})."
        )
    try:
        # Logged first, on the clock as it stood: the step itself is what the jurist did.
        container.exchange.authorizer.record(
            grant, STEP_EVENT, "rehearsal_clock_stepped", clock_from=before.isoformat(), clock_to=body.to.isoformat()
        )
    except AuditUnavailable:
        raise audit_unavailable() from None
    try:
        now = clock.step(body.to, body.running)
    except ValueError as exc:
        raise Problem(409, "clock_backwards", str(exc)) from None
    if container.lifecycle is not None:
        container.lifecycle.holder.refresh(force=True)
    return {"now": now.isoformat(), "running": clock.running, "copy_of": clock.copy_of}
