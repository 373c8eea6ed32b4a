"""The one path from a decision to data.

`Authorizer.authorize` decides, appends the decision to the audit log, waits until it is durably
committed, and only then, for a permit, mints an `AuthorizedAccess`. The record store accepts
nothing else. A denial raises `Denied` after its own audit entry is committed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

import structlog

from gateway.audit.writer import AuditWriter
from gateway.clock import Clock
from gateway.exchange.context import RequestContext
from gateway.policies.compiled import CompiledPolicy
from gateway.policies.decision import AccessRequest, Decision, decide
from gateway.policies.model import Operation

log = structlog.get_logger("gateway.exchange")
_MINT = object()
T = TypeVar("T")


class Denied(Exception):
    """A request was denied; its audit entry is committed."""

    def __init__(self, reason: str, text: str, audit_seq: int, hides_existence: bool = False) -> None:
        super().__init__(text)
        self.reason = reason
        self.text = text
        self.audit_seq = audit_seq
        self.hides_existence = hides_existence


class AuthorizedAccess:
    """Proof that a permit for exactly this participant, purpose and fields is in the audit log."""

    __slots__ = ("audit_seq", "decision", "operation", "organisation", "participant_id")

    def __init__(
        self,
        mint: object,
        participant_id: str | None,
        decision: Decision,
        audit_seq: int,
        organisation: str,
        operation: Operation,
    ) -> None:
        if mint is not _MINT or not decision.permitted:
            raise PermissionError("AuthorizedAccess is made only by Authorizer.authorize")
        self.participant_id = participant_id
        self.decision = decision
        self.audit_seq = audit_seq
        self.organisation = organisation
        self.operation = operation


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


class PolicySource(Protocol):
    """Where the effective policy comes from (the lifecycle's PolicyHolder)."""

    @property
    def current(self) -> CompiledPolicy: ...


@dataclass
class Authorizer:
    policy: CompiledPolicy
    audit: AuditWriter
    clock: Clock
    audit_timeout: float = 5.0
    holder: PolicySource | None = None  # when set, decisions use its current effective policy

    def current_policy(self) -> CompiledPolicy:
        """Return the effective policy now: the configuration with the lifecycle facts folded in."""
        return self.holder.current if self.holder is not None else self.policy

    def _entry(
        self, ctx: RequestContext, event: str, now: datetime, policy: CompiledPolicy | None = None, **fields: Any
    ) -> dict[str, Any]:
        policy = policy or self.current_policy()
        if policy.lifecycle_version is not None:
            # The revocations, withdrawals and holds the decision took into account (see gateway.lifecycle).
            fields["lifecycle_version"] = policy.lifecycle_version
        return {
            "v": 1,
            "time": _iso(now),
            "event": event,
            "organisation": ctx.principal.organisation,
            "client_id": ctx.principal.client_id,
            "acting_user": ctx.acting_user,
            "role": ctx.role,
            "purpose": ctx.purpose,
            "trace_id": ctx.trace.trace_id,
            "span_id": ctx.trace.span_id,
            "parent_span_id": ctx.trace.parent_span_id,
            "policy_version": policy.version,
            **fields,
        }

    def _refusal(
        self, ctx: RequestContext, event: str, reason: str, participant_id: str | None, fields: dict[str, Any]
    ) -> tuple[dict[str, Any], datetime]:
        now = self.clock.now()
        entry = self._entry(
            ctx,
            event,
            now,
            decision="deny",
            reason=reason,
            participant=participant_id,
            processing_activity_id=None,
            **fields,
        )
        return entry, now

    def refuse(
        self,
        ctx: RequestContext,
        event: str,
        reason: str,
        text: str,
        participant_id: str | None = None,
        hides_existence: bool = False,
        **fields: Any,
    ) -> Denied:
        """Log a denial made before any policy decision (bad purpose, unknown participant); return it."""
        entry, now = self._refusal(ctx, event, reason, participant_id, fields)
        appended = self.audit.append(entry, now, self.audit_timeout)
        self._log_denial(ctx, event, reason, appended.seq)
        return Denied(reason, text, appended.seq, hides_existence)

    async def refuse_async(
        self,
        ctx: RequestContext,
        event: str,
        reason: str,
        text: str,
        participant_id: str | None = None,
        hides_existence: bool = False,
        **fields: Any,
    ) -> Denied:
        """As `refuse`, awaiting the durable commit instead of blocking a thread."""
        entry, now = self._refusal(ctx, event, reason, participant_id, fields)
        appended = await self.audit.append_async(entry, now, self.audit_timeout)
        self._log_denial(ctx, event, reason, appended.seq)
        return Denied(reason, text, appended.seq, hides_existence)

    def record_log_access(
        self, ctx: RequestContext, event: str, reason: str, participant_id: str | None = None, **fields: Any
    ) -> int:
        """Log a permitted access to the audit log itself (privacy-officer review); return its seq once durable.

        The caller releases log entries or reports only after this returns (no log, no data).
        """
        now = self.clock.now()
        entry = self._entry(
            ctx,
            event,
            now,
            decision="permit",
            reason=reason,
            participant=participant_id,
            processing_activity_id=None,
            **fields,
        )
        return self.audit.append(entry, now, self.audit_timeout).seq

    @staticmethod
    def _log_denial(ctx: RequestContext, event: str, reason: str, seq: int) -> None:
        # Operational signal only; no participant, no pseudonym, no record contents.
        log.info(
            f"{event}.denied",
            reason=reason,
            organisation=ctx.principal.organisation,
            role=ctx.role,
            purpose=ctx.purpose,
            audit_seq=seq,
            trace_id=ctx.trace.trace_id,
        )

    def authorize(
        self,
        ctx: RequestContext,
        event: str,
        request: AccessRequest,
        participant_id: str | None,
        **fields: Any,
    ) -> AuthorizedAccess:
        """Decide, log durably, then return the access (permit) or raise Denied (deny)."""
        now = self.clock.now()
        policy = self.current_policy()
        decision = decide(policy, request, now.timestamp())
        entry = self._decision_entry(ctx, event, decision, now, participant_id, fields, policy)
        appended = self.audit.append(entry, now, self.audit_timeout)
        return self._outcome(ctx, event, request, decision, appended.seq, participant_id)

    async def authorize_async(
        self,
        ctx: RequestContext,
        event: str,
        request: AccessRequest,
        participant_id: str | None,
        **fields: Any,
    ) -> AuthorizedAccess:
        """As `authorize`, awaiting the durable commit instead of blocking a thread."""
        now = self.clock.now()
        policy = self.current_policy()
        decision = decide(policy, request, now.timestamp())
        entry = self._decision_entry(ctx, event, decision, now, participant_id, fields, policy)
        appended = await self.audit.append_async(entry, now, self.audit_timeout)
        return self._outcome(ctx, event, request, decision, appended.seq, participant_id)

    async def authorize_listing_async(
        self,
        ctx: RequestContext,
        event: str,
        request: AccessRequest,
        fetch: Callable[[frozenset[str]], Sequence[tuple[str, T]]],
    ) -> tuple[AuthorizedAccess, Sequence[tuple[str, T]]]:
        """Decide a list request; on permit fetch (participant id, item) rows for the visible regions
        and log exactly which participants are released, before returning them."""
        now = self.clock.now()
        policy = self.current_policy()
        decision = decide(policy, request, now.timestamp())
        rows: Sequence[tuple[str, T]] = fetch(decision.visible_regions) if decision.permitted else ()
        fields = {"regions": sorted(decision.visible_regions), "participants": [pid for pid, _ in rows]}
        entry = self._decision_entry(ctx, event, decision, now, None, fields, policy)
        appended = await self.audit.append_async(entry, now, self.audit_timeout)
        return self._outcome(ctx, event, request, decision, appended.seq, None), rows

    def _decision_entry(
        self,
        ctx: RequestContext,
        event: str,
        decision: Decision,
        now: datetime,
        participant_id: str | None,
        fields: dict[str, Any],
        policy: CompiledPolicy | None = None,
    ) -> dict[str, Any]:
        permitted = decision.fields_by_category
        return self._entry(
            ctx,
            event,
            now,
            policy,
            decision="permit" if decision.permitted else "deny",
            reason=decision.reason.value,
            participant=participant_id,
            processing_activity_id=decision.processing_activity_id,
            categories=sorted(permitted),
            fields={k: list(v) for k, v in sorted(permitted.items())},
            withheld=list(decision.withheld),
            rule_ids=list(decision.rule_ids),
            legal_bases=list(decision.legal_bases),
            covenants=list(decision.covenant_ids),
            **fields,
        )

    def _outcome(
        self,
        ctx: RequestContext,
        event: str,
        request: AccessRequest,
        decision: Decision,
        seq: int,
        participant_id: str | None,
    ) -> AuthorizedAccess:
        if not decision.permitted:
            self._log_denial(ctx, event, decision.reason.value, seq)
            raise Denied(decision.reason.value, decision.reason_text, seq, decision.hides_existence)
        return AuthorizedAccess(_MINT, participant_id, decision, seq, ctx.principal.organisation, request.operation)
