"""The durable outbox: enqueue inside the caller's transaction; lease, record and query deliveries.

`Outbox.enqueue` writes a notice with the connection of the caller's unit of work, so a notice
exists exactly when the change that caused it commits (no dual write). Everything else takes a
connection too; the caller commits. Leasing is a conditional UPDATE, which works alike on SQLite
and PostgreSQL: of several workers, exactly one gets each due notice.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, func, insert, or_, select, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError

from gateway.clock import Clock
from gateway.evidence.canonical import canonical_json
from gateway.outbox.model import Acknowledgement, AckOutcome, Attempt, Notice, NoticeStatus
from gateway.store.tables import outbox_acks, outbox_attempts, outbox_notices

_KIND_PREFIX = "urn:lvv-gateway:notice:"


def _notice(row: Row[Any]) -> Notice:
    return Notice(
        id=row.id,
        kind=row.kind,
        recipient_org=row.recipient_org,
        reference=row.reference,
        body=row.body.encode(),
        status=NoticeStatus(row.status),
        attempts=int(row.attempts),
        round_offset=int(row.round_offset),
        next_attempt_at=row.next_attempt_at,
        created_at=row.created_at,
        delivered_at=row.delivered_at,
        dead_at=row.dead_at,
        last_error=row.last_error,
    )


def _ack(row: Row[Any]) -> Acknowledgement:
    return Acknowledgement(
        notice_id=row.notice_id,
        organisation=row.organisation,
        client_id=row.client_id,
        acting_user=row.acting_user,
        outcome=AckOutcome(row.outcome),
        reference=row.reference,
        acknowledged_at=row.acknowledged_at,
        audit_seq=int(row.audit_seq),
    )


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


class Outbox:
    """Notices to partner organisations, kept in the database until delivered or given up."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def enqueue(
        self,
        conn: Connection,
        kind: str,
        recipient_org: str,
        payload: Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
        reference: str | None = None,
    ) -> str:
        """Queue a notice in the caller's transaction; return its id.

        With an `idempotency_key` already used, nothing is queued and the existing notice's id is
        returned, so a step that is retried (a covenant end run twice) never notifies twice.
        """
        if idempotency_key is not None:
            existing = self._by_key(conn, idempotency_key)
            if existing is not None:
                return existing
        notice_id = str(uuid.uuid4())
        now = self._clock.now()
        body = canonical_json(
            {
                "notice_id": notice_id,
                "type": kind if kind.startswith("urn:") else _KIND_PREFIX + kind,
                "recipient": recipient_org,
                "created_at": _iso(now),
                "payload": dict(payload),
            }
        )
        try:
            with conn.begin_nested():
                conn.execute(
                    insert(outbox_notices).values(
                        id=notice_id,
                        kind=kind,
                        recipient_org=recipient_org,
                        reference=reference,
                        idempotency_key=idempotency_key or notice_id,
                        body=body.decode(),
                        status=NoticeStatus.PENDING.value,
                        attempts=0,
                        round_offset=0,
                        next_attempt_at=now,
                        created_at=now,
                    )
                )
        except IntegrityError:
            # Another process queued the same notice between our check and our insert.
            existing = self._by_key(conn, idempotency_key or notice_id)
            if existing is None:
                raise
            return existing
        return notice_id

    @staticmethod
    def _by_key(conn: Connection, key: str) -> str | None:
        found = conn.execute(select(outbox_notices.c.id).where(outbox_notices.c.idempotency_key == key)).scalar()
        return str(found) if found is not None else None

    # -- delivery ------------------------------------------------------------------------------------

    @staticmethod
    def lease_due(conn: Connection, now: datetime, worker: str, lease: timedelta, limit: int) -> list[Notice]:
        """Lease up to `limit` pending notices that are due and not leased by a live worker; return them."""
        free = or_(outbox_notices.c.lease_until.is_(None), outbox_notices.c.lease_until < now)
        due = and_(outbox_notices.c.status == NoticeStatus.PENDING.value, outbox_notices.c.next_attempt_at <= now, free)
        candidates = list(
            conn.execute(
                select(outbox_notices.c.id).where(due).order_by(outbox_notices.c.next_attempt_at).limit(limit)
            ).scalars()
        )
        leased: list[Notice] = []
        for notice_id in candidates:
            taken = conn.execute(
                update(outbox_notices)
                .where(outbox_notices.c.id == notice_id, due)
                .values(lease_until=now + lease, leased_by=worker)
            )
            if taken.rowcount == 1:
                row = conn.execute(select(outbox_notices).where(outbox_notices.c.id == notice_id)).one()
                leased.append(_notice(row))
        return leased

    @staticmethod
    def record_attempt(conn: Connection, notice: Notice, attempt: Attempt, worker: str) -> bool:
        """Store one attempt and move the notice on (delivered, retry later, or dead).

        Return False (and store nothing) when this worker no longer holds the lease.
        """
        values: dict[str, Any] = {
            "attempts": attempt.attempt,
            "lease_until": None,
            "leased_by": None,
            "last_error": attempt.error,
        }
        if attempt.outcome == "delivered":
            values.update(status=NoticeStatus.DELIVERED.value, delivered_at=attempt.attempted_at, last_error=None)
        elif attempt.outcome == "dead":
            values.update(status=NoticeStatus.DEAD.value, dead_at=attempt.attempted_at)
        else:
            assert attempt.next_attempt_at is not None
            values.update(next_attempt_at=attempt.next_attempt_at)
        moved = conn.execute(
            update(outbox_notices)
            .where(
                outbox_notices.c.id == notice.id,
                outbox_notices.c.leased_by == worker,
                outbox_notices.c.status == NoticeStatus.PENDING.value,
            )
            .values(**values)
        )
        if moved.rowcount != 1:
            return False
        conn.execute(
            insert(outbox_attempts).values(
                notice_id=attempt.notice_id,
                attempt=attempt.attempt,
                attempted_at=attempt.attempted_at,
                url=attempt.url[:500] if attempt.url else None,
                status_code=attempt.status_code,
                error=attempt.error[:300] if attempt.error else None,
                outcome=attempt.outcome,
                next_attempt_at=attempt.next_attempt_at,
            )
        )
        return True

    @staticmethod
    def requeue(conn: Connection, notice_id: str, now: datetime) -> bool:
        """Give a dead notice a fresh round of attempts (after a person fixed the cause); return whether it was dead."""
        moved = conn.execute(
            update(outbox_notices)
            .where(outbox_notices.c.id == notice_id, outbox_notices.c.status == NoticeStatus.DEAD.value)
            .values(
                status=NoticeStatus.PENDING.value,
                round_offset=outbox_notices.c.attempts,
                next_attempt_at=now,
                dead_at=None,
            )
        )
        return moved.rowcount == 1

    # -- queries -------------------------------------------------------------------------------------

    @staticmethod
    def get(conn: Connection, notice_id: str) -> Notice | None:
        """Return the notice, or None."""
        row = conn.execute(select(outbox_notices).where(outbox_notices.c.id == notice_id)).first()
        return _notice(row) if row is not None else None

    @staticmethod
    def notices(
        conn: Connection,
        *,
        reference: str | None = None,
        recipient_org: str | None = None,
        status: NoticeStatus | None = None,
        limit: int = 1000,
    ) -> list[Notice]:
        """Return notices (about `reference`, to `recipient_org`, in `status`), oldest first."""
        query = select(outbox_notices).order_by(outbox_notices.c.created_at, outbox_notices.c.id).limit(limit)
        if reference is not None:
            query = query.where(outbox_notices.c.reference == reference)
        if recipient_org is not None:
            query = query.where(outbox_notices.c.recipient_org == recipient_org)
        if status is not None:
            query = query.where(outbox_notices.c.status == status.value)
        return [_notice(row) for row in conn.execute(query)]

    @staticmethod
    def attempts(conn: Connection, notice_ids: Sequence[str]) -> dict[str, list[Attempt]]:
        """Return the attempts of each notice, in order."""
        found: dict[str, list[Attempt]] = {n: [] for n in notice_ids}
        if not notice_ids:
            return found
        rows = conn.execute(
            select(outbox_attempts)
            .where(outbox_attempts.c.notice_id.in_(list(notice_ids)))
            .order_by(outbox_attempts.c.notice_id, outbox_attempts.c.attempt)
        )
        for row in rows:
            found[row.notice_id].append(
                Attempt(
                    row.notice_id,
                    int(row.attempt),
                    row.attempted_at,
                    row.url,
                    row.status_code,
                    row.error,
                    row.outcome,
                    row.next_attempt_at,
                )
            )
        return found

    @staticmethod
    def counts(conn: Connection) -> dict[str, int]:
        """Return how many notices are in each status."""
        rows = conn.execute(select(outbox_notices.c.status, func.count()).group_by(outbox_notices.c.status))
        return {str(status): int(n) for status, n in rows}

    # -- acknowledgements ----------------------------------------------------------------------------

    @staticmethod
    def add_ack(conn: Connection, ack: Acknowledgement) -> None:
        conn.execute(
            insert(outbox_acks).values(
                id=str(uuid.uuid4()),
                notice_id=ack.notice_id,
                organisation=ack.organisation,
                client_id=ack.client_id,
                acting_user=ack.acting_user,
                outcome=ack.outcome.value,
                reference=ack.reference,
                acknowledged_at=ack.acknowledged_at,
                audit_seq=ack.audit_seq,
            )
        )

    @staticmethod
    def acks(conn: Connection, notice_ids: Sequence[str]) -> dict[str, list[Acknowledgement]]:
        """Return the acknowledgements of each notice, oldest first."""
        found: dict[str, list[Acknowledgement]] = {n: [] for n in notice_ids}
        if not notice_ids:
            return found
        rows = conn.execute(
            select(outbox_acks)
            .where(outbox_acks.c.notice_id.in_(list(notice_ids)))
            .order_by(outbox_acks.c.acknowledged_at, outbox_acks.c.audit_seq)
        )
        for row in rows:
            found[row.notice_id].append(_ack(row))
        return found
