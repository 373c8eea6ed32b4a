"""A jurist's lifecycle actions: revoke a covenant early, withdraw a mandate, set and lift legal holds.

Each action is checked, written to the audit log (durably, first), then stored with the lifecycle
version moved on, so every gateway process swaps in the new effective policy on its next poll. A
revocation or withdrawal takes effect at a stated moment that is never in the past and at least the
propagation margin ahead, so that every process knows it before it arrives.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

import structlog
from sqlalchemy import Connection, select

from gateway.audit.writer import AuditWriter
from gateway.clock import Clock
from gateway.lifecycle import repository as repo
from gateway.lifecycle.events import Actor, iso, lifecycle_entry
from gateway.lifecycle.holder import PolicyHolder
from gateway.lifecycle.model import CovenantRevocation, HoldReason, LegalHold, MandateWithdrawal
from gateway.policies.model import OversightAction
from gateway.policies.oversight import OversightRequest, decide_oversight
from gateway.store.db import Database
from gateway.store.tables import participants

log = structlog.get_logger("gateway.lifecycle")
T = TypeVar("T")


class LifecycleRefused(Exception):
    """A lifecycle action was refused (nothing was recorded); `code` is stable."""

    def __init__(self, code: str, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise LifecycleRefused(
            "naive_moment", "Give the moment with its time zone offset, e.g. 2025-01-01T00:00:00+01:00."
        )
    return moment


def _text(value: str, what: str, limit: int) -> str:
    value = value.strip()
    if len(value) < 3 or len(value) > limit:
        raise LifecycleRefused("invalid_text", f"The {what} must be 3 to {limit} characters.")
    return value


class LifecycleService:
    def __init__(
        self,
        db: Database,
        audit: AuditWriter,
        clock: Clock,
        holder: PolicyHolder,
        margin_seconds: float,
        audit_timeout: float = 5.0,
    ) -> None:
        self.db = db
        self.audit = audit
        self.clock = clock
        self.holder = holder
        self.margin = timedelta(seconds=margin_seconds)
        self.audit_timeout = audit_timeout
        # Moves a newly held participant's data keys into its hold epoch (set by the wiring).
        self.after_hold_set: Callable[[str], object] | None = None

    # -- checks ------------------------------------------------------------------------------------

    def _jurist(self, actor: Actor, action: OversightAction, event: str, covenant: str | None = None) -> dict[str, Any]:
        """Return the gate's permit facts for the entry; log the denial and raise LifecycleRefused otherwise.

        Decided by `decide_oversight` over the effective policy (oversight.yaml: legal_hold_administration,
        covenant_administration), like every other access.
        """
        policy = self.holder.current
        now = self.clock.now()
        request = OversightRequest(actor.organisation or "", actor.role, action, covenant)
        decision = decide_oversight(policy, request, now.timestamp())
        facts: dict[str, Any] = {
            "processing_activity_id": decision.processing_activity_id,
            "action": action.value,
            "oversight_rule_ids": list(decision.rule_ids),
            "legal_bases": list(decision.legal_bases),
        }
        if not decision.permitted:
            entry = lifecycle_entry(event, now, actor, policy.version, decision.reason.value, **facts)
            entry.update(decision="deny", purpose=decision.purpose)
            self.audit.append(entry, now, self.audit_timeout)
            raise LifecycleRefused(decision.reason.value, decision.reason_text)
        return {**facts, "purpose": decision.purpose}

    def _not_before_margin(self, effective_at: datetime, now: datetime) -> datetime:
        effective_at = _aware(effective_at)
        earliest = now + self.margin
        if effective_at < earliest:
            raise LifecycleRefused(
                "effective_too_soon",
                f"The effective moment must be at or after {iso(earliest)} (now plus the propagation margin of "
                f"{int(self.margin.total_seconds())} s): every gateway process must know it before it arrives.",
            )
        return effective_at

    # -- recording ------------------------------------------------------------------------------------

    def _record(self, entry: dict[str, Any], now: datetime, store: Callable[[Connection, int], T]) -> T:
        """Log durably, then store with the lifecycle version moved on; on a failed store, log that too."""
        appended = self.audit.append(entry, now, self.audit_timeout)
        try:
            with self.db.write.begin() as conn:
                result = store(conn, appended.seq)
                repo.bump_version(conn)
        except Exception as exc:
            failed = dict(entry, event=f"{entry['event']}.not_recorded", decision="deny", reason="store_failed")
            failed["refers_to_seq"] = appended.seq
            self.audit.append(failed, now, self.audit_timeout)
            raise LifecycleRefused(
                "store_failed", f"The action was logged but not stored ({type(exc).__name__})."
            ) from exc
        self.holder.refresh()
        return result

    def revoke_covenant(
        self, actor: Actor, covenant_id: str, effective_at: datetime, reason: str, authority_reference: str
    ) -> CovenantRevocation:
        """Revoke a covenant early, effective at `effective_at`; return the recorded revocation."""
        gate = self._jurist(actor, OversightAction.COVENANT_REVOKE, "covenant.revoked")
        policy = self.holder.current
        covenant = policy.covenants.get(covenant_id)
        if covenant is None:
            raise LifecycleRefused("unknown_covenant", f"'{covenant_id}' is not a covenant of this configuration.")
        if actor.organisation not in covenant.parties:
            raise LifecycleRefused("not_a_party", "Only a jurist of a party to the covenant may revoke it.")
        if covenant_id in policy.lifecycle.revocations:
            raise LifecycleRefused("already_revoked", f"Covenant '{covenant_id}' has already been revoked.")
        now = self.clock.now()
        effective_at = self._not_before_margin(effective_at, now)
        if effective_at.timestamp() >= covenant.ends_ts:
            raise LifecycleRefused("after_end", "The covenant ends before that moment anyway; nothing to revoke.")
        fact = CovenantRevocation(
            covenant_id=covenant_id,
            effective_at=effective_at,
            reason=_text(reason, "reason", 2000),
            authority_reference=_text(authority_reference, "authority reference", 300),
            organisation=str(actor.organisation),
            acting_user=actor.acting_user,
            recorded_at=now,
            audit_seq=None,
        )
        entry = lifecycle_entry(
            "covenant.revoked",
            now,
            actor,
            policy.version,
            "jurist_action",
            covenants=[covenant_id],
            regions=sorted(covenant.regions),
            effective_at=iso(effective_at),
            configured_end=iso(covenant.source.ends_at),
            revocation_reason=fact.reason,
            authority_reference=fact.authority_reference,
        )
        entry.update(gate)

        def store(conn: Connection, seq: int) -> CovenantRevocation:
            stored = replace(fact, audit_seq=seq)
            repo.insert_revocation(conn, stored)
            return stored

        revoked = self._record(entry, now, store)
        log.info("covenant.revoked", covenant=covenant_id, effective_at=iso(effective_at))
        return revoked

    def withdraw_mandate(
        self, actor: Actor, mandate_id: str, effective_at: datetime, reason: str, authority_reference: str
    ) -> MandateWithdrawal:
        """Record the withdrawal of a mandate, effective at `effective_at`; return it."""
        gate = self._jurist(actor, OversightAction.COVENANT_REVOKE, "mandate.withdrawn")
        policy = self.holder.current
        mandate = policy.mandates.get(mandate_id)
        if mandate is None:
            raise LifecycleRefused("unknown_mandate", f"'{mandate_id}' is not a mandate of this configuration.")
        if actor.organisation != mandate.mandator:
            raise LifecycleRefused("not_the_mandator", "Only a jurist of the mandator may withdraw its mandate.")
        if mandate_id in policy.lifecycle.withdrawals:
            raise LifecycleRefused("already_withdrawn", f"Mandate '{mandate_id}' has already been withdrawn.")
        now = self.clock.now()
        effective_at = self._not_before_margin(effective_at, now)
        if effective_at.timestamp() >= policy.mandate_ends(mandate_id):
            raise LifecycleRefused("after_end", "The mandate ends before that moment anyway; nothing to withdraw.")
        fact = MandateWithdrawal(
            mandate_id=mandate_id,
            effective_at=effective_at,
            reason=_text(reason, "reason", 2000),
            authority_reference=_text(authority_reference, "authority reference", 300),
            organisation=str(actor.organisation),
            acting_user=actor.acting_user,
            recorded_at=now,
            audit_seq=None,
        )
        regions = sorted({r for c in mandate.covenants for r in policy.covenants[c].regions})
        entry = lifecycle_entry(
            "mandate.withdrawn",
            now,
            actor,
            policy.version,
            "jurist_action",
            mandate=mandate_id,
            mandate_reference=mandate.reference,
            covenants=list(mandate.covenants),
            rule_ids=list(mandate.rules),
            regions=regions,
            effective_at=iso(effective_at),
            withdrawal_reason=fact.reason,
            authority_reference=fact.authority_reference,
        )
        entry.update(gate)

        def store(conn: Connection, seq: int) -> MandateWithdrawal:
            stored = replace(fact, audit_seq=seq)
            repo.insert_withdrawal(conn, stored)
            return stored

        withdrawn = self._record(entry, now, store)
        log.info("mandate.withdrawn", mandate=mandate_id, effective_at=iso(effective_at))
        return withdrawn

    def set_hold(self, actor: Actor, participant_id: str, reason: HoldReason | str, case_reference: str) -> LegalHold:
        """Put a participant under a legal hold, at once; return the hold."""
        gate = self._jurist(actor, OversightAction.LEGAL_HOLD, "legal_hold.set")
        try:
            why = HoldReason(reason)
        except ValueError:
            known = ", ".join(r.value for r in HoldReason)
            raise LifecycleRefused("unknown_reason", f"The reason must be one of {known}.") from None
        policy = self.holder.current
        with self.db.read.connect() as conn:
            region = conn.execute(select(participants.c.region).where(participants.c.id == participant_id)).scalar()
        org = policy.organisations[str(actor.organisation)]
        if region is None or region not in org.regions:
            raise LifecycleRefused("unknown_participant", "No such participant in the regions of your organisation.")
        now = self.clock.now()
        hold = LegalHold(
            id=str(uuid.uuid4()),
            participant_id=participant_id,
            region=region,
            reason=why,
            case_reference=_text(case_reference, "case reference", 200),
            organisation=org.id,
            set_by=actor.acting_user,
            set_at=now,
            set_audit_seq=None,
        )
        entry = lifecycle_entry(
            "legal_hold.set",
            now,
            actor,
            policy.version,
            "jurist_action",
            participant=participant_id,
            region=region,
            hold_id=hold.id,
            hold_reason=why.value,
            case_reference=hold.case_reference,
        )
        entry.update(gate)

        def store(conn: Connection, seq: int) -> LegalHold:
            stored = replace(hold, set_audit_seq=seq)
            repo.insert_hold(conn, stored)
            return stored

        held = self._record(entry, now, store)
        log.info("legal_hold.set", hold_id=held.id, hold_reason=why.value)
        if self.after_hold_set is not None:
            try:
                self.after_hold_set(participant_id)
            except Exception as exc:  # the hold stands; the next retention run moves the keys
                log.warning("legal_hold.keys_not_moved", hold_id=held.id, error=type(exc).__name__)
        return held

    def lift_hold(self, actor: Actor, hold_id: str, reason: str) -> LegalHold:
        """Lift a legal hold (the decision is final): the retention clock restarts now; return the hold."""
        gate = self._jurist(actor, OversightAction.LEGAL_HOLD, "legal_hold.lifted")
        current = repo.hold(self.db, hold_id)
        policy = self.holder.current
        org = policy.organisations[str(actor.organisation)]
        if current is None or current.region not in org.regions:
            raise LifecycleRefused("unknown_hold", "No such legal hold in the regions of your organisation.")
        if not current.active:
            raise LifecycleRefused("already_lifted", "This legal hold has already been lifted.")
        lift_reason = _text(reason, "reason", 2000)
        now = self.clock.now()
        entry = lifecycle_entry(
            "legal_hold.lifted",
            now,
            actor,
            policy.version,
            "jurist_action",
            participant=current.participant_id,
            region=current.region,
            hold_id=hold_id,
            hold_reason=current.reason.value,
            case_reference=current.case_reference,
            lift_reason=lift_reason,
        )
        entry.update(gate)

        def store(conn: Connection, seq: int) -> LegalHold:
            if not repo.mark_lifted(conn, hold_id, now, actor.acting_user, lift_reason, seq):
                raise LifecycleRefused("already_lifted", "This legal hold has already been lifted.")
            return replace(
                current, lifted_at=now, lifted_by=actor.acting_user, lift_reason=lift_reason, lifted_audit_seq=seq
            )

        lifted = self._record(entry, now, store)
        log.info("legal_hold.lifted", hold_id=hold_id)
        return lifted
