"""After a covenant's end: disable the registered clients of parties that nothing serves any more.

A client is disabled when its organisation is party to no covenant in force now or later, has no
oversight window open any more (the aftercare of `oversight.yaml`: until then its clients get tokens
for the oversight roles only, see `gateway.auth.standing`), and no legal procedure can still need it
(a rule flagged `during_legal_hold_after_end` serving it, with an active legal hold in its regions).
Its status reason names the covenants that ended; each one is recorded in the audit log
(`covenant.client_disabled`). The sweep runs on every lifecycle poll once a covenant end or the end
of an aftercare window has passed or the lifecycle facts changed (a hold lifted), and is idempotent.
Notices to recipients are the evidence module's (`gateway.evidence.notices`).
"""

from __future__ import annotations

import math

import structlog

from gateway.audit.writer import AuditWriter
from gateway.auth.model import Status
from gateway.auth.registry import ClientRegistry
from gateway.clock import Clock
from gateway.lifecycle.events import Actor, lifecycle_entry
from gateway.lifecycle.holder import PolicyHolder
from gateway.lifecycle.repository import holds
from gateway.policies.compiled import CompiledPolicy
from gateway.policies.oversight import standing
from gateway.store.db import Database

log = structlog.get_logger("gateway.lifecycle")
SWEEPER = Actor(None, "gateway.lifecycle", "system")


def parties_without_covenant(policy: CompiledPolicy, now: float) -> dict[str, list[str]]:
    """Return each organisation that is party only to covenants that have ended and has no oversight
    window open any more, with those covenants."""
    out: dict[str, list[str]] = {}
    for org, covenants in policy.covenants_by_org.items():
        if covenants and all(c.ends_ts <= now for c in covenants) and not standing(policy, org, now).oversight_roles:
            out[org] = sorted(c.id for c in covenants)
    return out


def _ends(policy: CompiledPolicy) -> list[float]:
    """Return the moments a sweep may have work: covenant ends and the ends of oversight windows."""
    windows = [end for activity in policy.oversight.values() for _, end in activity.windows.values()]
    return [c.ends_ts for c in policy.covenants.values()] + windows


def legal_procedure_open(policy: CompiledPolicy, organisation: str, held_regions: set[str]) -> bool:
    """Return whether a rule flagged for legal holds after the end serves `organisation` where a hold runs."""
    org = policy.organisations.get(organisation)
    if org is None:
        return False
    for group in policy.rules_by_purpose_op.values():
        for rule in group:
            if not rule.after_end_under_hold or not any(r in rule.roles for r in org.roles):
                continue
            if org.id not in rule.organisations and org.kind.value not in rule.kinds:
                continue
            for cov_id in rule.covenants:
                cov = policy.covenants[cov_id]
                if organisation in cov.parties and cov.regions & set(org.regions) & held_regions:
                    return True
    return False


class CovenantEndSweep:
    def __init__(
        self, db: Database, registry: ClientRegistry, audit: AuditWriter, clock: Clock, holder: PolicyHolder
    ) -> None:
        self.db = db
        self.registry = registry
        self.audit = audit
        self.clock = clock
        self.holder = holder
        self._last = -math.inf
        self._version = -1

    def __call__(self) -> None:
        """Sweep when a covenant end passed since the last sweep, or the lifecycle facts changed."""
        policy = self.holder.current
        now = self.clock.timestamp()
        passed = any(self._last < end <= now for end in _ends(policy))
        if passed or policy.lifecycle.version != self._version:
            self.sweep()
            self._last, self._version = now, policy.lifecycle.version

    def sweep(self) -> list[str]:
        """Disable the clients no covenant serves any more; return their ids."""
        policy = self.holder.current
        now = self.clock.now()
        orphaned = parties_without_covenant(policy, now.timestamp())
        if not orphaned:
            return []
        held_regions = {h.region for h in holds(self.db, active_only=True)}
        disabled: list[str] = []
        for organisation, covenant_ids in sorted(orphaned.items()):
            if legal_procedure_open(policy, organisation, held_regions):
                continue  # kept for the legal procedure; swept again when the hold is lifted
            for client in self.registry.clients(organisation):
                if not client.active:
                    continue
                reason = f"covenant end: {', '.join(covenant_ids)}; no covenant in force"[:200]
                entry = lifecycle_entry(
                    "covenant.client_disabled",
                    now,
                    Actor(organisation, SWEEPER.acting_user, SWEEPER.role),
                    policy.version,
                    "no_covenant_in_force",
                    disabled_client=client.client_id,
                    disabled_organisation=organisation,
                    covenants=covenant_ids,
                )
                self.audit.append(entry, now)
                self.registry.set_client_status(client.client_id, Status.DISABLED, reason)
                disabled.append(client.client_id)
        if disabled:
            log.info("covenant.clients_disabled", clients=len(disabled))
        return disabled
