"""The one place for request dependencies, as `Annotated` aliases."""

from __future__ import annotations

from typing import Annotated

import structlog
from fastapi import Depends, Header, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from gateway.api.authn import authenticate_bearer
from gateway.api.problems import Problem
from gateway.api.refusals import ACTING_USER, ROLE, record_refusal
from gateway.auth.timing import is_time_failure
from gateway.auth.tokens import InvalidToken
from gateway.container import Container
from gateway.exchange.context import Principal, RequestContext, TraceContext

log = structlog.get_logger("gateway.auth")

# The largest sequence number, tree size or cursor a query may name: a database integer column holds it.
MAX_INDEX = 2**62
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


def _unauthorized(reason: str, container: Container | None = None) -> Problem:
    detail = "A valid bearer access token is required."
    if container is not None and is_time_failure(reason):
        # Name the clock: in demo and rehearsal mode tokens still run on real time.
        detail = f"The token is outside its validity period ({container.verifier.checked_against()})."
    return Problem(
        401,
        "invalid_token",
        "Authentication failed.",
        detail,
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


# Declared so that OpenAPI names the scheme on every operation that authenticates (and /docs can send a
# token); the header itself is read below, where a missing or malformed one becomes a problem+json 401.
BEARER = HTTPBearer(
    scheme_name="bearer",
    bearerFormat="JWT",
    description="An access token from the token endpoint (client credentials, private_key_jwt)",
    auto_error=False,
)


async def get_principal(
    request: Request,
    container: ContainerDep,
    trace: TraceDep,
    _: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)],
) -> Principal:
    header = request.headers.get("authorization")
    if not header or not header.lower().startswith("bearer "):
        log.info("auth.token.missing", trace_id=trace.trace_id, path=request.url.path)
        raise _unauthorized("missing")
    token = header[7:].strip()
    try:
        return authenticate_bearer(request, container, token)
    except InvalidToken as exc:
        log.warning("auth.token.rejected", reason=exc.reason, trace_id=trace.trace_id, path=request.url.path)
        # Only a token that verified names its client: revoked (carried) or refused for its certificate.
        verified = exc.token
        if verified is None and "certificate" in exc.reason:
            verified = container.verifier.identify(token)
        if verified is not None:
            reason = exc.reason.removeprefix("revoked: ") if exc.token is not None else "certificate_mismatch"
            await record_refusal(request, container, trace, verified.principal, reason)
        raise _unauthorized(exc.reason, container) from None
    except Problem as exc:
        # A 429 (rate limited) is not recorded: the audit log must not be the flood's sink.
        if exc.code == "insufficient_scope":
            verified = container.verifier.identify(token)
            if verified is not None:
                exc.extra["audit_seq"] = await record_refusal(
                    request, container, trace, verified.principal, "insufficient_scope"
                )
        raise


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def get_context(
    request: Request,
    container: ContainerDep,
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
    if not acting_user or not ACTING_USER.match(acting_user):
        seq = await record_refusal(request, container, trace, principal, "acting_user_missing")
        raise Problem(400, "acting_user_missing", f"The {USER_HEADER} header is missing or malformed.", audit_seq=seq)
    if not acting_role or not ROLE.match(acting_role):
        seq = await record_refusal(request, container, trace, principal, "acting_role_missing")
        raise Problem(400, "acting_role_missing", f"The {ROLE_HEADER} header is missing or malformed.", audit_seq=seq)
    # An unknown purpose is logged as stated, but never more than 64 characters of it.
    return RequestContext(principal, acting_user, acting_role, (purpose or "")[:64] or None, trace)


ContextDep = Annotated[RequestContext, Depends(get_context)]
