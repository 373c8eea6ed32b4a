"""The one place for request dependencies, as `Annotated` aliases."""

from __future__ import annotations

import re
from typing import Annotated

import structlog
from fastapi import Depends, Header, Request

from gateway.api.authn import authenticate_bearer
from gateway.api.problems import Problem
from gateway.auth.tokens import InvalidToken
from gateway.container import Container
from gateway.exchange.context import Principal, RequestContext, TraceContext

log = structlog.get_logger("gateway.auth")
_ACTING_USER = re.compile(r"^[A-Za-z0-9._@:+-]{1,128}$")
_ROLE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")

PURPOSE_HEADER = "Processing-Purpose"
USER_HEADER = "Acting-User"
ROLE_HEADER = "Acting-Role"


async def get_container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


ContainerDep = Annotated[Container, Depends(get_container)]


async def get_trace(request: Request) -> TraceContext:
    trace: TraceContext = request.state.trace
    return trace


TraceDep = Annotated[TraceContext, Depends(get_trace)]


def _unauthorized(reason: str) -> Problem:
    return Problem(
        401,
        "invalid_token",
        "Authentication failed.",
        "A valid bearer access token is required.",
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


async def get_principal(request: Request, container: ContainerDep, trace: TraceDep) -> Principal:
    header = request.headers.get("authorization")
    if not header or not header.lower().startswith("bearer "):
        log.info("auth.token.missing", trace_id=trace.trace_id, path=request.url.path)
        raise _unauthorized("missing")
    try:
        return authenticate_bearer(request, container, header[7:].strip())
    except InvalidToken as exc:
        log.warning("auth.token.rejected", reason=exc.reason, trace_id=trace.trace_id, path=request.url.path)
        raise _unauthorized(exc.reason) from None


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def get_context(
    principal: PrincipalDep,
    trace: TraceDep,
    acting_user: Annotated[
        str | None,
        Header(alias=USER_HEADER, description="Identifier of the person acting in the partner system"),
    ] = None,
    acting_role: Annotated[
        str | None,
        Header(alias=ROLE_HEADER, description="The role the acting person holds, e.g. case_manager"),
    ] = None,
    purpose: Annotated[
        str | None,
        Header(alias=PURPOSE_HEADER, description="The purpose (processing activity) of this request, e.g. intake"),
    ] = None,
) -> RequestContext:
    if not acting_user or not _ACTING_USER.match(acting_user):
        raise Problem(400, "acting_user_missing", f"The {USER_HEADER} header is missing or malformed.")
    if not acting_role or not _ROLE.match(acting_role):
        raise Problem(400, "acting_role_missing", f"The {ROLE_HEADER} header is missing or malformed.")
    # An unknown purpose is logged as stated, but never more than 64 characters of it.
    return RequestContext(principal, acting_user, acting_role, (purpose or "")[:64] or None, trace)


ContextDep = Annotated[RequestContext, Depends(get_context)]
