"""Revocation that bites per request: a disabled client or organisation, or an organisation whose every
covenant has ended, makes its tokens useless at once, not when they expire.

`revocation_reason` is pure (the compiled policy, the statuses read for this request, the clock's
now); `PartyRevocation` reads the statuses with one query per request.

Which tokens each rule covers:
- a disabled organisation, or a client disabled in the registry: every token naming it;
- tokens the gateway issued itself (signed by its own key) also need their client still registered,
  and an organisation that is party to a covenant in force now. Tokens of an external issuer the
  operator chose to trust (GATEWAY_TOKEN_JWKS_FILE) are that issuer's to revoke; for them the
  covenant's end is enforced by the decision on every request (a 403 recorded in the audit log).
"""

from __future__ import annotations

from collections.abc import Callable

from gateway.auth.model import PartyStatus, Status
from gateway.auth.repository import AuthRepository
from gateway.auth.tokens import VerifiedToken
from gateway.policies.compiled import CompiledPolicy
from gateway.store.db import Database


def has_covenant_in_force(policy: CompiledPolicy, organisation: str, now: float) -> bool:
    """Return whether `organisation` is party to at least one covenant in force at `now`."""
    return any(c.in_force(now) for c in policy.covenants_by_org.get(organisation, ()))


def revocation_reason(token: VerifiedToken, status: PartyStatus, policy: CompiledPolicy, now: float) -> str | None:
    """Return why `token` is revoked at `now`, or None while it may be used."""
    organisation = token.principal.organisation
    if status.organisation_disabled:
        return "organisation_disabled"
    if status.client is Status.DISABLED:
        return "client_disabled"
    if token.gateway_issued:
        if status.client is None:
            return "client_unknown"
        if organisation not in policy.organisations:
            return "organisation_unknown"
        if not has_covenant_in_force(policy, organisation, now):
            return "no_covenant_in_force"
    return None


class PartyRevocation:
    """The per-request revocation check against the registry (one query) and the effective policy
    (the configuration with recorded lifecycle facts, such as an early covenant revocation)."""

    def __init__(self, db: Database, repo: AuthRepository, policy: Callable[[], CompiledPolicy]) -> None:
        self._db = db
        self._repo = repo
        self._policy = policy

    def status(self, token: VerifiedToken) -> PartyStatus:
        """Return the current status of the token's client and organisation, and the epoch."""
        with self._db.read.connect() as conn:
            return self._repo.party_status(conn, token.principal.client_id, token.principal.organisation)

    def revoked(self, token: VerifiedToken, status: PartyStatus, now: float) -> str | None:
        """Return why the token is revoked now, or None."""
        return revocation_reason(token, status, self._policy(), now)
