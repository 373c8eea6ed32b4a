"""Recipients' side of notices: list and read their own notices, and acknowledge them.

Only the recipient organisation (from its access token) sees or acknowledges a notice; to any other
organisation a notice does not exist (404), and that refusal is logged. An acknowledgement is an audit
entry first (`notice.acknowledge`, durably committed) and then a row that names that entry: no log,
no acknowledgement. Acknowledging again adds a row (e.g. `received`, later `deleted`); the first is
the moment of acknowledgement, the latest the recipient's current statement.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gateway.clock import Clock
from gateway.exchange.authorize import Authorizer, OversightGrant
from gateway.exchange.context import RequestContext
from gateway.outbox.model import Acknowledgement, AckOutcome, Notice
from gateway.outbox.repository import Outbox
from gateway.policies.compiled import CompiledPolicy
from gateway.policies.model import OversightAction
from gateway.store.db import Database

ACK_EVENT = "notice.acknowledge"
READ_EVENT = "notice.read"
# ASCII only, so that the pattern means the same in Python, in JSON Schema (ECMA) and in partners' validators.
REFERENCE_PATTERN = r"^[A-Za-z0-9_ .:/#()-]{1,120}$"
REFERENCE = re.compile(REFERENCE_PATTERN)


class NoticeNotFound(Exception):
    """No such notice for this organisation (the refusal is logged as `audit_seq`)."""

    def __init__(self, audit_seq: int) -> None:
        super().__init__("No such notice.")
        self.audit_seq = audit_seq


@dataclass(frozen=True, slots=True)
class NoticeView:
    """A notice with its acknowledgements, as its recipient sees it."""

    notice: Notice
    acks: tuple[Acknowledgement, ...]

    @property
    def acknowledged(self) -> bool:
        return bool(self.acks)


class NoticeService:
    def __init__(self, db: Database, outbox: Outbox, authorizer: Authorizer, policy: CompiledPolicy, clock: Clock):
        self._db = db
        self._outbox = outbox
        self._authorizer = authorizer
        self._policy = policy
        self._clock = clock

    def _guard(self, ctx: RequestContext, event: str, notice_id: str | None) -> tuple[OversightGrant, Notice | None]:
        """Return the gate's grant (the notice_acknowledgement activity) and the notice, if one is named.

        A notice of another organisation does not exist for the caller (404, logged).
        """
        grant = self._authorizer.oversee(ctx, event, OversightAction.NOTICE_ACKNOWLEDGE, notice_id=notice_id)
        if notice_id is None:
            return grant, None
        with self._db.read.connect() as conn:
            notice = self._outbox.get(conn, notice_id)
        if notice is None or notice.recipient_org != grant.organisation:
            denied = self._authorizer.refuse_within(
                grant, event, "unknown_notice", "No such notice.", hides_existence=True, notice_id=notice_id
            )
            raise NoticeNotFound(denied.audit_seq)
        return grant, notice

    def notices(self, ctx: RequestContext, unacknowledged_only: bool = False) -> list[NoticeView]:
        """Return the notices addressed to the caller's organisation, oldest first."""
        grant, _ = self._guard(ctx, READ_EVENT, None)
        with self._db.read.connect() as conn:
            notices = self._outbox.notices(conn, recipient_org=grant.organisation)
            acks = self._outbox.acks(conn, [n.id for n in notices])
        views = [NoticeView(n, tuple(acks[n.id])) for n in notices]
        shown = [v for v in views if not v.acknowledged] if unacknowledged_only else views
        self._authorizer.record(grant, READ_EVENT, "notices_read", results=len(shown))
        return shown

    def notice(self, ctx: RequestContext, notice_id: str) -> NoticeView:
        """Return one notice addressed to the caller's organisation (NoticeNotFound otherwise)."""
        grant, notice = self._guard(ctx, READ_EVENT, notice_id)
        assert notice is not None
        with self._db.read.connect() as conn:
            acks = self._outbox.acks(conn, [notice.id])[notice.id]
        self._authorizer.record(grant, READ_EVENT, "notice_read", notice_id=notice.id)
        return NoticeView(notice, tuple(acks))

    def acknowledge(
        self, ctx: RequestContext, notice_id: str, outcome: AckOutcome, reference: str | None
    ) -> Acknowledgement:
        """Record the caller's acknowledgement: logged durably first, then stored; return it."""
        if reference is not None and not REFERENCE.fullmatch(reference):
            raise ValueError("reference: up to 120 letters, digits, spaces and . : / # ( ) - _")
        grant, notice = self._guard(ctx, ACK_EVENT, notice_id)
        assert notice is not None
        seq = self._authorizer.record(
            grant,
            ACK_EVENT,
            "notice_acknowledged",
            notice_id=notice.id,
            notice_kind=notice.kind,
            reference=notice.reference,
            outcome=outcome.value,
            recipient_reference=reference,
        )
        ack = Acknowledgement(
            notice_id=notice.id,
            organisation=ctx.principal.organisation,
            client_id=ctx.principal.client_id,
            acting_user=ctx.acting_user,
            outcome=outcome,
            reference=reference,
            acknowledged_at=self._clock.now(),
            audit_seq=seq,
        )
        with self._db.write.begin() as conn:
            self._outbox.add_ack(conn, ack)
        return ack
