"""Wiring of the outbox, notices and evidence for one running gateway (used by the composition root)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import Connection

from gateway.evidence.keys import EvidenceSigner, load_evidence_signer
from gateway.evidence.notices import CovenantEndNotifier, covenant_end_of, notify_ended_covenants
from gateway.evidence.render_html import EvidenceRenderer
from gateway.evidence.service import EvidenceService
from gateway.outbox.acks import NoticeService
from gateway.outbox.delivery import DeliveryWorker, PolicyEndpoints, WorkerHandle
from gateway.outbox.model import RetryPolicy
from gateway.outbox.repository import Outbox
from gateway.policies.compiled import CompiledPolicy

if TYPE_CHECKING:
    from gateway.container import Container


@dataclass
class EvidenceParts:
    signer: EvidenceSigner | None
    outbox: Outbox
    worker: DeliveryWorker
    notifier: CovenantEndNotifier
    notices: NoticeService
    service: EvidenceService
    renderer: EvidenceRenderer
    poll_seconds: float

    def notify_covenant_end(self, covenant_id: str, conn: Connection | None = None) -> list[str]:
        """Queue the signed deletion notices for a covenant's end (its effective end: configured or revoked).

        In the caller's transaction when `conn` is given, else in one of its own. Idempotent; return the ids.
        """
        policy = self.service.policy()
        ended_at, kind, reason, authority = covenant_end_of(policy, covenant_id)
        if conn is not None:
            return self.notifier.notify_covenant_end(
                conn, covenant_id, ended_at, kind=kind, reason=reason, authority_reference=authority
            )
        with self.service.db.write.begin() as own:
            return self.notifier.notify_covenant_end(
                own, covenant_id, ended_at, kind=kind, reason=reason, authority_reference=authority
            )

    def sweep_ended_covenants(self) -> list[str]:
        """Queue the notices of every ended covenant that has none yet; return those covenants."""
        with self.service.db.write.begin() as conn:
            return notify_ended_covenants(conn, self.notifier, self.service.policy(), self.service.clock.now())

    def worker_handle(self) -> WorkerHandle:
        """Return a handle that runs the delivery worker as an asyncio task (in the server)."""
        return WorkerHandle(self.worker, self.poll_seconds)


def build_evidence(container: Container) -> EvidenceParts:
    """Return the outbox, notice and evidence parts of `container`."""
    s = container.settings
    signer = load_evidence_signer(s.key_dir)
    outbox = Outbox(container.clock)
    retry = RetryPolicy(
        max_attempts=s.outbox_max_attempts,
        base_seconds=s.outbox_backoff_base_seconds,
        max_delay_seconds=s.outbox_backoff_max_seconds,
    )
    worker = DeliveryWorker(
        container.db,
        outbox,
        PolicyEndpoints(container.policy),
        signer,
        container.clock,
        retry,
        audit=container.audit,
        policy_version=container.policy.version,
        timeout=s.outbox_request_timeout_seconds,
        lease=timedelta(seconds=s.outbox_lease_seconds),
        paused="rehearsal mode: notices are queued and listed, never sent" if s.rehearsal else None,
    )
    config = container.policy.config
    renderer = EvidenceRenderer(
        s.evidence_timezone,
        names={o.id: o.name for o in config.organisations} | {c.id: c.name for c in config.categories},
    )

    def effective_policy() -> CompiledPolicy:
        lifecycle = container.lifecycle
        return lifecycle.holder.current if lifecycle is not None else container.policy

    service = EvidenceService(
        db=container.db,
        policy=effective_policy,
        outbox=outbox,
        audit=container.audit,
        clock=container.clock,
        signer=signer,
        renderer=renderer,
        public_url=s.public_url,
        sealer=container.sealer,
        rehearsal=s.rehearsal,
    )
    parts = EvidenceParts(
        signer=signer,
        outbox=outbox,
        worker=worker,
        notifier=CovenantEndNotifier(container.policy.config, outbox, s.public_url, s.rehearsal),
        notices=NoticeService(container.db, outbox, container.exchange.authorizer, container.policy, container.clock),
        service=service,
        renderer=renderer,
        poll_seconds=s.outbox_poll_seconds,
    )
    if s.covenant_end_notices:
        worker.add_before_run(parts.sweep_ended_covenants)
    return parts


def evidence_parts(container: Container) -> EvidenceParts:
    """Return the container's evidence parts, building them on first use (containers built elsewhere)."""
    if container.evidence is None:
        container.evidence = build_evidence(container)
    return container.evidence
