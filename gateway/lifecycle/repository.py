"""Lifecycle facts in the database: revocations, mandate withdrawals, legal holds, and their version."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from types import MappingProxyType
from typing import Any

from sqlalchemy import Connection, insert, select, update

from gateway.lifecycle.model import (
    CovenantRevocation,
    HoldReason,
    LegalHold,
    LifecycleFacts,
    MandateWithdrawal,
)
from gateway.store.db import Database
from gateway.store.tables import covenant_revocations, legal_holds, lifecycle_state, mandate_withdrawals


def current_version(db: Database) -> int:
    """Return the lifecycle version (bumped by every change); 0 when nothing was ever recorded."""
    with db.read.connect() as conn:
        value = conn.execute(select(lifecycle_state.c.version).where(lifecycle_state.c.id == 1)).scalar()
    return int(value or 0)


def bump_version(conn: Connection) -> int:
    """Move the lifecycle version on inside the caller's transaction; return the new version."""
    conn.execute(update(lifecycle_state).where(lifecycle_state.c.id == 1).values(version=lifecycle_state.c.version + 1))
    return int(conn.execute(select(lifecycle_state.c.version).where(lifecycle_state.c.id == 1)).scalar_one())


def _revocation(row: Any) -> CovenantRevocation:
    return CovenantRevocation(
        covenant_id=row.covenant_id,
        effective_at=row.effective_at,
        reason=row.reason,
        authority_reference=row.authority_reference,
        organisation=row.organisation,
        acting_user=row.acting_user,
        recorded_at=row.recorded_at,
        audit_seq=row.audit_seq,
    )


def _withdrawal(row: Any) -> MandateWithdrawal:
    return MandateWithdrawal(
        mandate_id=row.mandate_id,
        effective_at=row.effective_at,
        reason=row.reason,
        authority_reference=row.authority_reference,
        organisation=row.organisation,
        acting_user=row.acting_user,
        recorded_at=row.recorded_at,
        audit_seq=row.audit_seq,
    )


def _hold(row: Any) -> LegalHold:
    return LegalHold(
        id=row.id,
        participant_id=row.participant_id,
        region=row.region,
        reason=HoldReason(row.reason),
        case_reference=row.case_reference,
        organisation=row.organisation,
        set_by=row.set_by,
        set_at=row.set_at,
        set_audit_seq=row.set_audit_seq,
        lifted_at=row.lifted_at,
        lifted_by=row.lifted_by,
        lift_reason=row.lift_reason,
        lifted_audit_seq=row.lifted_audit_seq,
    )


def load_facts(db: Database) -> LifecycleFacts:
    """Return the lifecycle facts as of one consistent read, with their version."""
    with db.read.connect() as conn, conn.begin():
        version = conn.execute(select(lifecycle_state.c.version).where(lifecycle_state.c.id == 1)).scalar()
        revocations = {r.covenant_id: _revocation(r) for r in conn.execute(select(covenant_revocations))}
        withdrawals = {r.mandate_id: _withdrawal(r) for r in conn.execute(select(mandate_withdrawals))}
        active = conn.execute(
            select(legal_holds.c.participant_id, legal_holds.c.region, legal_holds.c.organisation).where(
                legal_holds.c.lifted_at.is_(None)
            )
        ).all()
    return LifecycleFacts(
        version=int(version or 0),
        revocations=MappingProxyType(revocations),
        withdrawals=MappingProxyType(withdrawals),
        held=frozenset(r.participant_id for r in active),
        held_by=frozenset((r.organisation, r.region) for r in active),
    )


def revocation(db: Database, covenant_id: str) -> CovenantRevocation | None:
    """Return the recorded revocation of a covenant, if any."""
    with db.read.connect() as conn:
        row = conn.execute(
            select(covenant_revocations).where(covenant_revocations.c.covenant_id == covenant_id)
        ).first()
    return _revocation(row) if row else None


def withdrawal(db: Database, mandate_id: str) -> MandateWithdrawal | None:
    """Return the recorded withdrawal of a mandate, if any."""
    with db.read.connect() as conn:
        row = conn.execute(select(mandate_withdrawals).where(mandate_withdrawals.c.mandate_id == mandate_id)).first()
    return _withdrawal(row) if row else None


def insert_revocation(conn: Connection, fact: CovenantRevocation) -> None:
    """Store a revocation (the caller's transaction bumps the version)."""
    conn.execute(
        insert(covenant_revocations).values(
            covenant_id=fact.covenant_id,
            effective_at=fact.effective_at,
            reason=fact.reason,
            authority_reference=fact.authority_reference,
            organisation=fact.organisation,
            acting_user=fact.acting_user,
            recorded_at=fact.recorded_at,
            audit_seq=fact.audit_seq,
        )
    )


def insert_withdrawal(conn: Connection, fact: MandateWithdrawal) -> None:
    """Store a mandate withdrawal (the caller's transaction bumps the version)."""
    conn.execute(
        insert(mandate_withdrawals).values(
            mandate_id=fact.mandate_id,
            effective_at=fact.effective_at,
            reason=fact.reason,
            authority_reference=fact.authority_reference,
            organisation=fact.organisation,
            acting_user=fact.acting_user,
            recorded_at=fact.recorded_at,
            audit_seq=fact.audit_seq,
        )
    )


def insert_hold(conn: Connection, hold: LegalHold) -> None:
    """Store a new legal hold."""
    conn.execute(
        insert(legal_holds).values(
            id=hold.id,
            participant_id=hold.participant_id,
            region=hold.region,
            reason=hold.reason.value,
            case_reference=hold.case_reference,
            organisation=hold.organisation,
            set_by=hold.set_by,
            set_at=hold.set_at,
            set_audit_seq=hold.set_audit_seq,
        )
    )


def mark_lifted(conn: Connection, hold_id: str, at: datetime, by: str, reason: str, audit_seq: int | None) -> bool:
    """Record that a hold was lifted; return False when it was not active."""
    result = conn.execute(
        update(legal_holds)
        .where(legal_holds.c.id == hold_id, legal_holds.c.lifted_at.is_(None))
        .values(lifted_at=at, lifted_by=by, lift_reason=reason, lifted_audit_seq=audit_seq)
    )
    return result.rowcount == 1


def hold(db: Database, hold_id: str) -> LegalHold | None:
    """Return one legal hold."""
    with db.read.connect() as conn:
        row = conn.execute(select(legal_holds).where(legal_holds.c.id == hold_id)).first()
    return _hold(row) if row else None


def holds(db: Database, *, active_only: bool = False, participant_ids: Sequence[str] | None = None) -> list[LegalHold]:
    """Return legal holds, oldest first (all, the active ones, or those of some participants)."""
    query = select(legal_holds).order_by(legal_holds.c.set_at, legal_holds.c.id)
    if active_only:
        query = query.where(legal_holds.c.lifted_at.is_(None))
    if participant_ids is not None:
        query = query.where(legal_holds.c.participant_id.in_(list(participant_ids)))
    with db.read.connect() as conn:
        return [_hold(r) for r in conn.execute(query)]


def holds_by_participant(conn: Connection) -> dict[str, list[LegalHold]]:
    """Return every hold (active and lifted), grouped by participant, in the caller's connection."""
    out: dict[str, list[LegalHold]] = {}
    for row in conn.execute(select(legal_holds)):
        out.setdefault(row.participant_id, []).append(_hold(row))
    return out
