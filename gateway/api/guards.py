"""One guard factory for every access outside the exchange (polar's `OrgPolicyGuard` is the model).

`oversight_guard(action, event)` returns a FastAPI dependency that asks the one gate
(`Authorizer.oversee`, deciding with `decide_oversight` over the effective policy) whether the caller's
organisation and acting role may do `action` now. A refusal is a committed audit entry before the
403 (or 404 where the caller may not learn that the thing exists); a permit is an `OversightGrant`,
which the endpoint hands to the service that records the access before anything is returned. An
endpoint that declares the dependency cannot forget the check, and a service that takes a grant
cannot be called without one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from gateway.api.deps import ContainerDep, ContextDep
from gateway.api.problems import Problem
from gateway.audit.writer import AuditUnavailable
from gateway.exchange.authorize import Denied, OversightGrant
from gateway.policies.model import OversightAction


def denied_problem(exc: Denied, not_found_title: str = "Not found.") -> Problem:
    """Return the problem response of a logged denial: 404 where existence is hidden, 403 otherwise."""
    if exc.hides_existence:
        return Problem(404, "not_found", not_found_title, audit_seq=exc.audit_seq)
    return Problem(403, exc.reason, "Access denied.", exc.text, audit_seq=exc.audit_seq)


def audit_unavailable() -> Problem:
    """Return the 503 answered when the audit log cannot record a request (nothing released)."""
    return Problem(
        503,
        "audit_unavailable",
        "The audit log cannot record this request; nothing was released.",
        headers={"Retry-After": "5"},
    )


def oversight_guard(action: OversightAction, event: str) -> Callable[..., Awaitable[OversightGrant]]:
    """Return a dependency that yields the gate's grant for `action`, or answers the logged refusal."""

    async def guard(ctx: ContextDep, container: ContainerDep) -> OversightGrant:
        try:
            return await container.exchange.authorizer.oversee_async(ctx, event, action)
        except Denied as exc:
            raise denied_problem(exc) from None
        except AuditUnavailable:
            raise audit_unavailable() from None

    guard.__name__ = f"guard_{action.name.lower()}"
    return guard
