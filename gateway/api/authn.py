"""Bearer authentication of the resource API, once per request: the verified, unrevoked token; its
certificate binding (RFC 8705); the acting role within the token's scope; the client's rate limit.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

import structlog
from fastapi import Request

from gateway.api.problems import Problem
from gateway.auth.ratelimit import RateLimited
from gateway.auth.tokens import Authenticated, InvalidToken
from gateway.container import Container
from gateway.exchange.context import Principal

log = structlog.get_logger("gateway.auth")
ROLE_HEADER = "acting-role"


def _rate_limit(container: Container, result: Authenticated) -> int | None:
    """Return the client's requests per minute: its registration's, the default, or None (no limit)."""
    settings = container.settings
    status = result.status
    if status is not None and status.client is not None:
        return status.rate_limit_per_minute or settings.rate_limit_per_minute
    return settings.external_rate_limit_per_minute


def authenticate_bearer(request: Request, container: Container, token: str) -> Principal:
    """Return the principal of the request's bearer token; raise InvalidToken (401) or a Problem (403, 429)."""
    trace = getattr(request.state, "trace", None)
    return authenticate_token(
        container,
        token,
        request.headers.get(ROLE_HEADER),
        request.client.host if request.client else None,
        request.headers,
        trace.trace_id if trace is not None else None,
    )


def authenticate_token(
    container: Container,
    token: str,
    role: str | None,
    peer: str | None,
    headers: Mapping[str, str],
    trace_id: str | None = None,
) -> Principal:
    """Return the principal of `token` presented by `peer` with `headers`, acting as `role` (None: no scope
    check); raise InvalidToken (401) or a Problem (403 insufficient scope, 429 rate limited).

    The one check of a token, for the API and the web pages alike: signature, expiry, client and
    organisation status, certificate binding (RFC 8705), scope, rate limit.
    """
    auth = container.auth
    result = auth.verifier.authenticate(token)
    verified = result.token
    if verified.certificate_thumbprint is not None:
        presented = auth.certificates.thumbprint(peer, headers)
        if presented is None or not hmac.compare_digest(presented, verified.certificate_thumbprint):
            raise InvalidToken("certificate-bound token without its certificate")
    if verified.scope is not None and role is not None and role not in verified.scope:
        log.warning(
            "auth.token.insufficient_scope",
            client_id=verified.principal.client_id,
            role=role[:64],
            trace_id=trace_id,
        )
        raise Problem(
            403,
            "insufficient_scope",
            "The token does not grant this role.",
            "Request a token whose scope includes the Acting-Role.",
            headers={"WWW-Authenticate": 'Bearer error="insufficient_scope"'},
        )
    limit = _rate_limit(container, result)
    if limit is not None:
        try:
            auth.limiter.take(f"api:{verified.principal.client_id}", limit)
        except RateLimited as exc:
            log.warning("auth.rate_limited", client_id=verified.principal.client_id, trace_id=trace_id)
            raise Problem(
                429,
                "rate_limited",
                "Too many requests for this client.",
                f"Retry after {exc.retry_after} seconds.",
                headers={"Retry-After": str(exc.retry_after)},
            ) from None
    return verified.principal
