"""Covenant end: a signed notice to every recipient organisation, asking it to delete its copies.

`notify_covenant_end` queues the notices in the caller's transaction (the covenant-end step of the
lifecycle calls it); the outbox delivers them, signed, with retries. Recipients acknowledge with
`POST /v1/notices/{id}/ack`, or fetch their notices with `GET /v1/notices` when they have no
endpoint. A recipient is every party of the covenant that a sharing rule under it lets read or list:
the organisations that may hold copies received under it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select

from gateway.outbox.repository import Outbox
from gateway.policies.compiled import CompiledPolicy
from gateway.policies.model import Operation, PolicyConfig
from gateway.store.tables import outbox_notices

COVENANT_END_KIND = "covenant_end"
NOTICE_VERSION = 1
EndKind = Literal["ended", "revoked"]

REQUEST_TEXT = (
    "The covenant named in this notice is no longer in force. It was the arrangement under which you "
    "received personal data of participants through the gateway. Delete every copy of data you received "
    "under it, unless you hold that data under a lawful basis of your own (for which you then answer "
    "yourself), and acknowledge this notice. Data of participants under a legal hold (a running objection, "
    "appeal, complaint or access request) may be kept for that procedure only, as the parties to it agree."
)


@dataclass(frozen=True, slots=True)
class Recipient:
    """An organisation that may hold copies received under a covenant, and what it could receive."""

    organisation: str
    categories: tuple[str, ...]


def covenant_recipients(config: PolicyConfig, covenant_id: str) -> list[Recipient]:
    """Return the parties that a rule under the covenant lets read or list, with the categories granted."""
    covenant = next((c for c in config.covenants if c.id == covenant_id), None)
    if covenant is None:
        raise KeyError(covenant_id)
    parties = {p.organisation for p in covenant.parties}
    kinds = {o.id: o.kind.value for o in config.organisations}
    granted: dict[str, set[str]] = defaultdict(set)
    for rule in config.rules:
        if covenant_id not in rule.covenants:
            continue
        if not ({Operation.READ, Operation.LIST} & set(rule.operations)):
            continue
        for org in parties:
            if org in rule.recipient.organisations or kinds.get(org) in {k.value for k in rule.recipient.kinds}:
                granted[org].update(g.category for g in rule.grants)
    return [Recipient(org, tuple(sorted(granted[org]))) for org in sorted(granted)]


def _iso(moment: datetime) -> str:
    return moment.isoformat()


@dataclass(frozen=True, slots=True)
class CovenantEndNotifier:
    """Queues covenant-end notices; `public_url` is where recipients acknowledge and fetch the keys."""

    config: PolicyConfig
    outbox: Outbox
    public_url: str
    rehearsal: bool = False  # a rehearsal's notices say so (and its outbox never sends them)

    def notify_covenant_end(
        self,
        conn: Connection,
        covenant_id: str,
        ended_at: datetime,
        *,
        kind: EndKind = "ended",
        reason: str | None = None,
        authority_reference: str | None = None,
    ) -> list[str]:
        """Queue one signed notice per recipient organisation in the caller's transaction; return their ids.

        Idempotent per covenant and recipient: calling it again (a rerun of the end step) queues nothing
        new and returns the ids queued the first time.
        """
        if ended_at.tzinfo is None:
            raise ValueError("ended_at must be aware")
        covenant = next(c for c in self.config.covenants if c.id == covenant_id)
        zone = ZoneInfo(covenant.timezone)
        base = self.public_url.rstrip("/")
        names = {c.id: c.name for c in self.config.categories}
        ids: list[str] = []
        for recipient in covenant_recipients(self.config, covenant_id):
            payload: dict[str, Any] = {
                "version": NOTICE_VERSION,
                "rehearsal": self.rehearsal,
                "request": "delete_copies",
                "request_text": REQUEST_TEXT,
                "covenant": {
                    "id": covenant.id,
                    "title": covenant.title,
                    "mandate": covenant.mandate,
                    "end": kind,
                    "ended_at": _iso(ended_at.astimezone(zone)),
                    "ended_at_utc": ended_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
                    "reason": reason,
                    "authority_reference": authority_reference,
                },
                "categories_received": [{"id": c, "name": names.get(c, c)} for c in recipient.categories],
                "acknowledge": {
                    "method": "POST",
                    "url": f"{base}/v1/notices/{{notice_id}}/ack",
                    "body": {"outcome": "received | deleted | kept_own_basis", "reference": "your own reference"},
                },
                "verification": {
                    "signature": "RFC 9421 HTTP Message Signature, label 'notice', alg ed25519",
                    "keys": f"{base}/.well-known/evidence-keys.json",
                },
            }
            ids.append(
                self.outbox.enqueue(
                    conn,
                    COVENANT_END_KIND,
                    recipient.organisation,
                    payload,
                    idempotency_key=f"{COVENANT_END_KIND}:{covenant_id}:{recipient.organisation}",
                    reference=covenant_reference(covenant_id),
                )
            )
        return ids


def covenant_reference(covenant_id: str) -> str:
    """Return the outbox reference of notices about a covenant."""
    return f"covenant:{covenant_id}"


def covenant_end_of(policy: CompiledPolicy, covenant_id: str) -> tuple[datetime, EndKind, str | None, str | None]:
    """Return a covenant's effective end: (moment, ended|revoked, reason, authority reference)."""
    covenant = policy.covenants[covenant_id]
    end = datetime.fromtimestamp(covenant.ends_ts, UTC)
    revocation = policy.lifecycle.revocations.get(covenant_id)
    if revocation is not None and covenant.ends_ts < covenant.source.ends_at.timestamp():
        return end, "revoked", revocation.reason, revocation.authority_reference
    return end, "ended", None, None


def notify_ended_covenants(
    conn: Connection, notifier: CovenantEndNotifier, policy: CompiledPolicy, now: datetime
) -> list[str]:
    """Queue the covenant-end notices of every covenant that has ended and has none yet; return the covenant ids.

    The lifecycle calls `notify_covenant_end` at the end; this sweep (run with each delivery round)
    makes sure no ended covenant is left without its notices if that call was missed.
    """
    notified = {
        ref.removeprefix("covenant:")
        for ref in conn.execute(
            select(outbox_notices.c.reference).where(outbox_notices.c.kind == COVENANT_END_KIND).distinct()
        ).scalars()
        if ref
    }
    done = []
    for covenant_id, covenant in policy.covenants.items():
        if covenant.ends_ts > now.timestamp() or covenant_id in notified:
            continue
        ended_at, kind, reason, authority = covenant_end_of(policy, covenant_id)
        notifier.notify_covenant_end(
            conn, covenant_id, ended_at, kind=kind, reason=reason, authority_reference=authority
        )
        done.append(covenant_id)
    return done
