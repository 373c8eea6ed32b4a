"""Refusals before the decision, as evidence: a request whose token verified (its client is known)
but that is refused for its scope, its certificate binding, a revocation or missing acting headers
is recorded in the audit log (`auth.refused`, decision deny) before the answer, as the gate records
its own denials. If the log cannot take it, the answer is 503, as for the exchange.

Not recorded, on purpose: a token that does not verify (bad signature, expired, garbage) names no
client anybody proved, and recording it would let anyone flood the audit log; a rate-limited request
is the flood itself. Both go to the operational log only.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import structlog
from fastapi import Request

from gateway.api.problems import Problem
from gateway.audit.writer import AuditUnavailable
from gateway.container import Container
from gateway.exchange.context import Principal, TraceContext

log = structlog.get_logger("gateway.auth")
EVENT = "auth.refused"
ACTING_USER = re.compile(r"^[A-Za-z0-9._@:+-]{1,128}$")
ROLE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


def well_formed(value: str | None, pattern: re.Pattern[str]) -> str | None:
    """Return a header value fit for the audit log (well-formed, at most 64 characters), or None."""
    return value[:64] if value and pattern.match(value) else None


def path_template(request: Request) -> str | None:
    """Return the matched route's path template (never the path itself: it may hold a pseudonym)."""
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else None


def refusal_entry(
    request: Request,
    container: Container,
    trace: TraceContext,
    principal: Principal,
    reason: str,
    acting_user: str | None = None,
    role: str | None = None,
    **fields: Any,
) -> tuple[dict[str, Any], datetime]:
    """Return the audit entry of an identified client's refused request, and its time (the policy clock).

    The acting user and role are the request's headers unless given (a sign-in form states them).
    """
    policy = container.auth.policy
    now = container.clock.now()  # the policy clock, as every entry of the log
    headers = request.headers
    entry: dict[str, Any] = {
        "v": 1,
        "time": now.isoformat().replace("+00:00", "Z"),
        "event": EVENT,
        "organisation": principal.organisation,
        "client_id": principal.client_id,
        "acting_user": well_formed(acting_user or headers.get("acting-user"), ACTING_USER),
        "role": well_formed(role or headers.get("acting-role"), ROLE),
        "purpose": well_formed(headers.get("processing-purpose"), ROLE),
        "trace_id": trace.trace_id,
        "span_id": trace.span_id,
        "parent_span_id": trace.parent_span_id,
        "policy_version": policy.version,
        "decision": "deny",
        "reason": reason,
        "processing_activity_id": None,
        "participant": None,
        "method": request.method,
        "path": path_template(request) or request.url.path[:64],
        "token_id": principal.token_id[:64],
        **fields,
    }
    if policy.lifecycle_version is not None:
        entry["lifecycle_version"] = policy.lifecycle_version
    return entry, now


def record_refusal_now(
    request: Request,
    container: Container,
    trace: TraceContext,
    principal: Principal,
    reason: str,
    acting_user: str | None = None,
    role: str | None = None,
) -> int:
    """As `record_refusal`, blocking this (worker) thread until the entry is durable; AuditUnavailable if not."""
    entry, now = refusal_entry(request, container, trace, principal, reason, acting_user, role)
    appended = container.audit.append(entry, now, container.settings.audit_flush_timeout_seconds)
    log.info(EVENT, reason=reason, client_id=principal.client_id, seq=appended.seq, trace_id=trace.trace_id)
    return appended.seq


async def record_refusal(
    request: Request,
    container: Container,
    trace: TraceContext,
    principal: Principal,
    reason: str,
    **fields: Any,
) -> int:
    """Append the refusal of an identified client's request; return its seq, or raise a 503 Problem."""
    entry, now = refusal_entry(request, container, trace, principal, reason, **fields)
    try:
        appended = await container.audit.append_async(entry, now, container.settings.audit_flush_timeout_seconds)
    except AuditUnavailable:
        log.error("auth.refusal.audit_unavailable", reason=reason, trace_id=trace.trace_id)
        raise Problem(
            503,
            "audit_unavailable",
            "The audit log cannot record this request; nothing was released.",
            headers={"Retry-After": "5"},
        ) from None
    log.info(EVENT, reason=reason, client_id=principal.client_id, seq=appended.seq, trace_id=trace.trace_id)
    return appended.seq
