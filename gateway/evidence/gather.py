"""Collecting what evidence adds to the lifecycle's facts: rules, notices and acknowledgements, disabled
clients, signed checkpoints. Read-only.
"""

from __future__ import annotations

import re

from sqlalchemy import select

from gateway.audit.checkpoint import parse
from gateway.evidence.facts import AckFact, CheckpointRef, DisabledClient, RecipientNotified, RuleInForce
from gateway.evidence.notices import covenant_reference
from gateway.outbox.repository import Outbox
from gateway.policies.compiled import CompiledPolicy
from gateway.store.db import Database
from gateway.store.tables import audit_checkpoints, auth_clients


def rules_in_force(policy: CompiledPolicy, covenant_id: str) -> list[RuleInForce]:
    """Return the sharing rules that applied under the covenant."""
    found: list[RuleInForce] = []
    for rule in policy.config.rules:
        if covenant_id not in rule.covenants:
            continue
        found.append(
            RuleInForce(
                id=rule.id,
                purpose=rule.purpose,
                operations=tuple(op.value for op in rule.operations),
                recipients=tuple(sorted({*rule.recipient.organisations, *(k.value for k in rule.recipient.kinds)})),
                roles=tuple(rule.recipient.roles),
                categories=tuple(g.category for g in rule.grants),
                legal_basis=rule.legal_basis.dpv,
                after_end_under_hold=rule.during_legal_hold_after_end,
            )
        )
    return found


def recipients_notified(
    db: Database, outbox: Outbox, policy: CompiledPolicy, covenant_id: str
) -> list[RecipientNotified]:
    """Return the deletion notices about the covenant, with their delivery and acknowledgements."""
    with db.read.connect() as conn:
        notices = sorted(outbox.notices(conn, reference=covenant_reference(covenant_id)), key=lambda n: n.recipient_org)
        acks = outbox.acks(conn, [n.id for n in notices])
    out: list[RecipientNotified] = []
    for n in notices:
        org = policy.organisations.get(n.recipient_org)
        out.append(
            RecipientNotified(
                organisation=n.recipient_org,
                name=org.name if org is not None else n.recipient_org,
                notice_id=n.id,
                status=n.status.value,
                queued_at=n.created_at,
                delivered_at=n.delivered_at,
                attempts=n.attempts,
                last_error=n.last_error,
                acks=tuple(
                    AckFact(a.outcome.value, a.acknowledged_at, a.acting_user, a.client_id, a.reference, a.audit_seq)
                    for a in acks[n.id]
                ),
            )
        )
    return out


def clients_disabled(db: Database, policy: CompiledPolicy, covenant_id: str) -> list[DisabledClient]:
    """Return the parties' registered clients that were disabled because of this covenant's end.

    The lifecycle's covenant-end sweep disables a client whose organisation no covenant serves any more,
    naming the ended covenants in the status reason ("covenant end: a, b; ..."); that is what is matched.
    """
    parties = sorted(policy.covenants[covenant_id].parties)
    with db.read.connect() as conn:
        rows = conn.execute(
            select(auth_clients)
            .where(
                auth_clients.c.organisation.in_(parties),
                auth_clients.c.status == "disabled",
                auth_clients.c.status_reason.contains(covenant_id),
            )
            .order_by(auth_clients.c.client_id)
        ).all()
    named = re.compile(rf"(?:^|[\s:,;]){re.escape(covenant_id)}(?:$|[\s,;])")
    return [
        DisabledClient(r.client_id, r.organisation, r.updated_at, r.status_reason)
        for r in rows
        if named.search(r.status_reason or "")
    ]


def _ref(note: str) -> CheckpointRef:
    cp = parse(note).checkpoint
    return CheckpointRef(cp.size, cp.root_hex, cp.time, note)


def checkpoint_covering(db: Database, seq: int) -> CheckpointRef | None:
    """Return the first signed checkpoint whose tree holds entry `seq` (and so every entry before it)."""
    with db.read.connect() as conn:
        note = conn.execute(
            select(audit_checkpoints.c.note)
            .where(audit_checkpoints.c.tree_size >= seq)
            .order_by(audit_checkpoints.c.tree_size)
            .limit(1)
        ).scalar()
    return _ref(note) if note is not None else None


def latest_checkpoint(db: Database) -> CheckpointRef | None:
    """Return the latest signed checkpoint."""
    with db.read.connect() as conn:
        note = conn.execute(
            select(audit_checkpoints.c.note).order_by(audit_checkpoints.c.tree_size.desc()).limit(1)
        ).scalar()
    return _ref(note) if note is not None else None
