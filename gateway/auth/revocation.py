"""Revocation that bites per request: a disabled client or organisation, or an organisation that may
hold no token any more (its covenants and their aftercare ended), makes its tokens useless at once,
not when they expire.

`revocation_reason` is pure (the compiled policy, the statuses read for this request, the policy
clock's now); `PartyRevocation` reads the change counter (`auth_state.epoch`, one primary-key read;
on SQLite on the raw driver, `gateway.store.hot`) per request and the statuses only when the counter
moved or the pair was not seen yet: every change of what the status holds (`register`,
`set_client_status`, `set_organisation_status`, key rotations) bumps the counter in the same
transaction, so a cached status, also "no such client registered" (the clients an operator trusts
through GATEWAY_TOKEN_JWKS_FILE), is never older than the committed counter that vouches for it.

Which tokens each rule covers:
- a disabled organisation, or a client disabled in the registry: every token naming it;
- tokens the gateway issued itself (signed by its own key) also need their client still registered,
  and an organisation with standing now: a covenant in force, or an open oversight window
  (aftercare, `oversight.yaml`). The covenant's end alone revokes nothing: a token issued before the
  end stays verifiable until it expires, and the decision denies its exchange requests with
  `no_covenant_in_force` (a 403 in the audit log, the evidence the revocation report counts), while
  its oversight roles go on. After the end the token endpoint issues oversight roles only.
- Tokens of an external issuer the operator chose to trust (GATEWAY_TOKEN_JWKS_FILE) are that
  issuer's to revoke; for them the covenant's end is enforced by the decision on every request.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from gateway.auth.model import PartyStatus, Status
from gateway.auth.repository import EPOCH_SQL, AuthRepository
from gateway.auth.tokens import VerifiedToken
from gateway.clock import Clock
from gateway.policies.compiled import CompiledPolicy
from gateway.policies.oversight import standing
from gateway.store.db import Database, StorageUnavailable, is_storage_outage
from gateway.store.hot import HotReads

# Pairs (client, organisation) of verified tokens whose status is held; past this the cache starts over.
_CACHE_SIZE = 10_000


def revocation_reason(token: VerifiedToken, status: PartyStatus, policy: CompiledPolicy, now: float) -> str | None:
    """Return why `token` is revoked at `now` (the policy clock), or None while it may be used."""
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
        now_standing = standing(policy, organisation, now)
        if not now_standing.exchange_in_force and not now_standing.oversight_roles:
            return "aftercare_ended" if now_standing.ended_at is not None else "no_covenant_in_force"
    return None


class PartyRevocation:
    """The per-request revocation check against the registry (one query) and the effective policy
    (the configuration with recorded lifecycle facts, such as an early covenant revocation), on the
    policy clock (simulated in demo and rehearsal mode; the token's own times are the verifier's)."""

    def __init__(
        self, db: Database, repo: AuthRepository, policy: Callable[[], CompiledPolicy], clock: Clock | None = None
    ) -> None:
        self._db = db
        self._repo = repo
        self._policy = policy
        self._clock = clock
        self._hot = HotReads.for_database(db)  # None on PostgreSQL: the counter is read through SQLAlchemy
        self._cache: dict[tuple[str, str], PartyStatus] = {}
        self._cache_lock = threading.Lock()
        self._cache_epoch = -1
        self.reads = 0  # full status reads (the rest were answered from the cache behind the epoch)

    def status(self, token: VerifiedToken) -> PartyStatus:
        """Return the current status of the token's client and organisation, and the epoch.

        Raises StorageUnavailable when the database cannot answer: an unknown status is never "not revoked".
        """
        key = (token.principal.client_id, token.principal.organisation)
        try:
            if self._hot is not None:
                epoch = int(self._hot.scalar(EPOCH_SQL))
                cached = self._cache.get(key)
                if cached is not None and cached.epoch == epoch:
                    return cached
                with self._db.read.connect() as conn:
                    status = self._repo.party_status(conn, *key)
            else:
                with self._db.read.connect() as conn:
                    epoch = self._repo.epoch(conn)
                    cached = self._cache.get(key)
                    if cached is not None and cached.epoch == epoch:
                        return cached
                    status = self._repo.party_status(conn, *key)
        except Exception as exc:
            if is_storage_outage(exc):
                raise StorageUnavailable(f"revocation status unavailable: {type(exc).__name__}") from exc
            raise
        self.reads += 1
        with self._cache_lock:
            if status.epoch > self._cache_epoch or len(self._cache) >= _CACHE_SIZE:
                self._cache.clear()  # statuses vouched for by an older counter (or too many pairs)
                self._cache_epoch = max(status.epoch, self._cache_epoch)
            if status.epoch == self._cache_epoch:
                self._cache[key] = status
        return status

    def close(self) -> None:
        """Close the raw read connections (a later request opens new ones)."""
        if self._hot is not None:
            self._hot.close()

    def revoked(self, token: VerifiedToken, status: PartyStatus, now: float) -> str | None:
        """Return why the token is revoked now (the policy clock's now when one is set), or None."""
        at = self._clock.timestamp() if self._clock is not None else now
        return revocation_reason(token, status, self._policy(), at)
