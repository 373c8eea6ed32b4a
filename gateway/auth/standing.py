"""Which roles a token may carry, from the organisation's covenant standing on the policy clock.

While a covenant of the organisation is in force, every role of its registration; after the end,
inside an aftercare window (`oversight.yaml`), only its oversight roles; after the last window, none.
Pure: the compiled policy, the organisation and the policy clock's now go in; the roles, or an
`OAuthError` whose description says why, come out.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from gateway.auth import errors
from gateway.auth.errors import OAuthError
from gateway.policies.compiled import CompiledPolicy
from gateway.policies.oversight import Standing, standing

DEFAULT_ZONE = "Europe/Amsterdam"


def _zone(policy: CompiledPolicy, organisation: str) -> ZoneInfo:
    own = policy.covenants_by_org.get(organisation, ())
    return ZoneInfo(own[0].source.timezone if own else DEFAULT_ZONE)


def local_iso(policy: CompiledPolicy, organisation: str, ts: float) -> str:
    """Return POSIX time `ts` as ISO-8601 in the organisation's covenant time zone (seconds)."""
    return datetime.fromtimestamp(ts, _zone(policy, organisation)).isoformat(timespec="seconds")


def last_aftercare_end(policy: CompiledPolicy, organisation: str) -> float | None:
    """Return when the organisation's last oversight window closes (closed or not), or None without one."""
    org = policy.organisations.get(organisation)
    ids = {c.id for c in policy.covenants_by_org.get(organisation, ())}
    if org is None:
        return None
    ends = [
        end
        for activity in policy.oversight.values()
        if any(activity.serves(org, r) for r in org.roles)
        for cov_id, (_, end) in activity.windows.items()
        if cov_id in ids
    ]
    return max(ends) if ends else None


def _ended(policy: CompiledPolicy, s: Standing) -> str:
    # The covenants' own wording: the last second in force (valid_until is inclusive).
    assert s.ended_at is not None
    return f"the covenants of {s.organisation} ended on {local_iso(policy, s.organisation, s.ended_at - 1)}"


def _oversight_only(policy: CompiledPolicy, s: Standing) -> str:
    assert s.aftercare_until is not None
    roles = ", ".join(sorted(s.oversight_roles))
    until = local_iso(policy, s.organisation, s.aftercare_until)
    return f"{_ended(policy, s)}; only oversight roles ({roles}) remain until {until}"


def token_standing(policy: CompiledPolicy, organisation: str, now_ts: float, client_id: str | None = None) -> Standing:
    """Return the organisation's standing; raise unauthorized_client when it may hold no token at all."""
    s = standing(policy, organisation, now_ts)
    if s.exchange_in_force or s.oversight_roles:
        return s
    if s.ended_at is None:
        raise OAuthError(
            errors.UNAUTHORIZED_CLIENT,
            "the organisation is party to no covenant in force",
            reason="no_covenant_in_force",
            client_id=client_id,
        )
    last = last_aftercare_end(policy, organisation)
    aftercare = f"; their aftercare period ended on {local_iso(policy, organisation, last)}" if last else ""
    raise OAuthError(
        errors.UNAUTHORIZED_CLIENT,
        f"{_ended(policy, s)}{aftercare}",
        reason="aftercare_ended",
        client_id=client_id,
    )


def granted_roles(
    policy: CompiledPolicy,
    s: Standing,
    registered: Sequence[str],
    scope: str | None,
    client_id: str | None = None,
) -> tuple[str, ...]:
    """Return the roles to grant: those asked for (default: all registered), each allowed by the
    organisation's configuration and its standing now; raise invalid_scope otherwise."""
    organisation = policy.organisations.get(s.organisation)
    allowed = [r for r in registered if organisation is not None and r in organisation.roles]
    asked = scope.split() if scope and scope.strip() else None
    if asked is None:
        now_allowed = [r for r in allowed if s.allows(r)]
        if now_allowed:
            return tuple(now_allowed)
        if allowed and not s.exchange_in_force:
            raise OAuthError(
                errors.INVALID_SCOPE,
                f"{_oversight_only(policy, s)}; this client is registered for none of them",
                reason="oversight_roles_only",
                client_id=client_id,
            )
        raise OAuthError(errors.INVALID_SCOPE, "the client has no role it may act in", client_id=client_id)
    refused = sorted(set(asked) - set(allowed))
    if refused:
        raise OAuthError(
            errors.INVALID_SCOPE,
            f"scope not allowed for this client: {' '.join(refused)[:120]}",
            reason="scope_not_allowed",
            client_id=client_id,
        )
    if any(not s.allows(r) for r in asked):
        raise OAuthError(
            errors.INVALID_SCOPE, _oversight_only(policy, s), reason="oversight_roles_only", client_id=client_id
        )
    return tuple(dict.fromkeys(asked))
