"""The one path from a decision to data.

`Authorizer.authorize` decides, appends the decision to the audit log, waits until it is durably
committed, and only then, for a permit, mints an `AuthorizedAccess`. The record store accepts
nothing else. A denial raises `Denied` after its own audit entry is committed.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol, TypeVar

import structlog

from gateway.audit.writer import AuditWriter
from gateway.clock import Clock
from gateway.exchange.context import RequestContext, TraceContext
from gateway.policies.compiled import CompiledPolicy
from gateway.policies.decision import AccessRequest, Decision, decide
from gateway.policies.model import Operation, OversightAction
from gateway.policies.oversight import OversightRequest, decide_oversight

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

    __slots__ = ("audit_seq", "decision", "operation", "organisation", "participant_id", "trace")

    def __init__(
        self,
        mint: object,
        participant_id: str | None,
        decision: Decision,
        audit_seq: int,
        organisation: str,
        operation: Operation,
        trace: TraceContext | None = None,
    ) -> None:
        if mint is not _MINT or not decision.permitted:
            raise PermissionError("AuthorizedAccess is made only by Authorizer.authorize")
        self.participant_id = participant_id
        self.decision = decision
        self.audit_seq = audit_seq
        self.organisation = organisation
        self.operation = operation
        self.trace = trace  # the request's trace, passed on to a brokered source

    def narrowed(self, categories: Iterable[str]) -> AuthorizedAccess:
        """Return the same access for a subset of its permitted categories (one source's share)."""
        permitted = self.decision.fields_by_category
        wanted = [c for c in categories if c in permitted]
        if len(wanted) == len(permitted):
            return self  # nothing cut (every category from one source, the usual read): the same access
        cut = replace(self.decision, permitted_fields={c: permitted[c] for c in wanted})
        return AuthorizedAccess(
            _MINT, self.participant_id, cut, self.audit_seq, self.organisation, self.operation, self.trace
        )


class ListingAccess:
    """Proof that a listing is permitted: the organisation, the regions it may see, and the page asked."""

    __slots__ = ("after", "decision", "limit", "organisation", "regions")

    def __init__(self, mint: object, decision: Decision, organisation: str, limit: int, after: str | None) -> None:
        if mint is not _MINT or not decision.permitted:
            raise PermissionError("ListingAccess is made only by Authorizer.authorize_listing_async")
        self.decision = decision
        self.organisation = organisation
        self.regions = decision.visible_regions
        self.limit = limit
        self.after = after

    def next_page(self, after: str) -> ListingAccess:
        """Return the same listing for the page after `after` (a caller skipping participants it may not see)."""
        return ListingAccess(_MINT, self.decision, self.organisation, self.limit, after)


class ImportGrant:
    """Proof that a file import was permitted and logged: per region, the decision that permits it.

    Made only by `Authorizer.authorize_import`; `access_for` gives the write access for one row's
    participant, under the import's audit entry, and refuses a participant of a region not permitted.
    """

    __slots__ = ("audit_seq", "decisions", "organisation")

    def __init__(self, mint: object, decisions: dict[str, Decision], audit_seq: int, organisation: str) -> None:
        if mint is not _MINT or not decisions or not all(d.permitted for d in decisions.values()):
            raise PermissionError("ImportGrant is made only by Authorizer.authorize_import")
        self.decisions = decisions
        self.audit_seq = audit_seq
        self.organisation = organisation

    def access_for(self, participant_id: str, region: str) -> AuthorizedAccess:
        """Return the write access for one participant of the import (its region must be permitted)."""
        decision = self.decisions.get(region)
        if decision is None:
            raise PermissionError(f"the import is not permitted for region '{region}'")
        return AuthorizedAccess(_MINT, participant_id, decision, self.audit_seq, self.organisation, Operation.WRITE)


class OversightGrant:
    """Proof that the gate permitted one oversight action (log review, evidence, notices, holds, ...).

    Made only by `Authorizer.oversee`; the services of oversight take it instead of a bare request
    context, and record the access with `Authorizer.record`, which writes the permit entry with the
    activity (rule id), its legal basis and the covenants it serves.
    """

    __slots__ = ("action", "ctx", "decision")

    def __init__(self, mint: object, ctx: RequestContext, action: OversightAction, decision: Decision) -> None:
        if mint is not _MINT or not decision.permitted:
            raise PermissionError("OversightGrant is made only by Authorizer.oversee")
        self.ctx = ctx
        self.action = action
        self.decision = decision

    @property
    def organisation(self) -> str:
        """Return the organisation the grant was decided for."""
        return self.ctx.principal.organisation

    def require(self, *actions: OversightAction) -> OversightGrant:
        """Return self when the grant is for one of `actions`; a grant for another action is a bug."""
        if self.action not in actions:
            raise PermissionError(f"a grant for {self.action.value} does not permit {', '.join(actions)}")
        return self


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
    # Called with (decision, seconds from deciding to the durable commit) for each decision (/metrics).
    observer: Callable[[str, float], None] | None = None

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

    # -- oversight: the same gate for everything outside the exchange ------------------------------

    def _oversight_decision(
        self, ctx: RequestContext, action: OversightAction, covenant: str | None
    ) -> tuple[Decision, datetime, CompiledPolicy]:
        now = self.clock.now()
        policy = self.current_policy()
        request = OversightRequest(ctx.principal.organisation, ctx.role, action, covenant)
        return decide_oversight(policy, request, now.timestamp()), now, policy

    def _oversight_entry(
        self,
        ctx: RequestContext,
        event: str,
        decision: Decision,
        now: datetime,
        policy: CompiledPolicy | None,
        action: OversightAction,
        reason: str,
        participant_id: str | None,
        fields: dict[str, Any],
    ) -> dict[str, Any]:
        return self._entry(
            replace(ctx, purpose=decision.purpose),
            event,
            now,
            policy,
            decision="permit" if decision.permitted else "deny",
            reason=reason,
            participant=participant_id,
            processing_activity_id=decision.processing_activity_id,
            action=action.value,
            rule_ids=list(decision.rule_ids),
            legal_bases=list(decision.legal_bases),
            covenants=list(decision.covenant_ids),
            **fields,
        )

    def _oversight_outcome(
        self, ctx: RequestContext, event: str, action: OversightAction, decision: Decision, seq: int | None
    ) -> OversightGrant:
        if not decision.permitted:
            assert seq is not None
            self._log_denial(ctx, event, decision.reason.value, seq)
            raise Denied(decision.reason.value, decision.reason_text, seq, decision.hides_existence)
        return OversightGrant(_MINT, replace(ctx, purpose=decision.purpose), action, decision)

    def oversee(
        self, ctx: RequestContext, event: str, action: OversightAction, covenant: str | None = None, **fields: Any
    ) -> OversightGrant:
        """Decide an oversight action; a denial is logged durably and raised as Denied, a permit returned.

        The permit is logged by `record` once the caller knows what it releases, before it releases it.
        """
        decision, now, policy = self._oversight_decision(ctx, action, covenant)
        seq = None
        if not decision.permitted:
            entry = self._oversight_entry(
                ctx, event, decision, now, policy, action, decision.reason.value, None, fields
            )
            seq = self.audit.append(entry, now, self.audit_timeout).seq
        return self._oversight_outcome(ctx, event, action, decision, seq)

    async def oversee_async(
        self, ctx: RequestContext, event: str, action: OversightAction, covenant: str | None = None, **fields: Any
    ) -> OversightGrant:
        """As `oversee`, awaiting the durable commit instead of blocking a thread."""
        decision, now, policy = self._oversight_decision(ctx, action, covenant)
        seq = None
        if not decision.permitted:
            entry = self._oversight_entry(
                ctx, event, decision, now, policy, action, decision.reason.value, None, fields
            )
            seq = (await self.audit.append_async(entry, now, self.audit_timeout)).seq
        return self._oversight_outcome(ctx, event, action, decision, seq)

    def record(
        self, grant: OversightGrant, event: str, reason: str, participant_id: str | None = None, **fields: Any
    ) -> int:
        """Log a permitted oversight access durably; return its seq. The caller releases only after this."""
        now = self.clock.now()
        entry = self._oversight_entry(
            grant.ctx, event, grant.decision, now, None, grant.action, reason, participant_id, fields
        )
        return self.audit.append(entry, now, self.audit_timeout).seq

    async def record_async(
        self, grant: OversightGrant, event: str, reason: str, participant_id: str | None = None, **fields: Any
    ) -> int:
        """As `record`, awaiting the durable commit."""
        now = self.clock.now()
        entry = self._oversight_entry(
            grant.ctx, event, grant.decision, now, None, grant.action, reason, participant_id, fields
        )
        return (await self.audit.append_async(entry, now, self.audit_timeout)).seq

    def refuse_within(
        self,
        grant: OversightGrant,
        event: str,
        reason: str,
        text: str,
        participant_id: str | None = None,
        hides_existence: bool = False,
        **fields: Any,
    ) -> Denied:
        """Log a refusal inside a permitted activity (an unknown document or participant); return it."""
        now = self.clock.now()
        decision = replace(grant.decision, permitted=False)
        entry = self._oversight_entry(
            grant.ctx, event, decision, now, None, grant.action, reason, participant_id, fields
        )
        seq = self.audit.append(entry, now, self.audit_timeout).seq
        self._log_denial(grant.ctx, event, reason, seq)
        return Denied(reason, text, seq, hides_existence)

    async def record_not_released_async(
        self, ctx: RequestContext, event: str, access: AuthorizedAccess, source: str, reason: str
    ) -> int:
        """Log durably that a permitted access released nothing (its source failed); return the entry's seq.

        A denial in the log's terms (the processing did not take place), naming the permit it follows.
        """
        now = self.clock.now()
        d = access.decision
        entry = self._entry(
            ctx,
            f"{event}.source_failed",
            now,
            decision="deny",
            reason=reason,
            participant=access.participant_id,
            processing_activity_id=d.processing_activity_id,
            categories=sorted(d.fields_by_category),
            rule_ids=list(d.rule_ids),
            covenants=list(d.covenant_ids),
            source=source,
            released=False,
            decision_seq=access.audit_seq,
        )
        seq = (await self.audit.append_async(entry, now, self.audit_timeout)).seq
        self._log_denial(ctx, f"{event}.source_failed", reason, seq)
        return seq

    def record_operator_access(self, ctx: RequestContext, event: str, reason: str, **fields: Any) -> int:
        """Log an operator's access from the command line (on the machine, outside the partner gate)."""
        now = self.clock.now()
        entry = self._entry(
            ctx, event, now, decision="permit", reason=reason, participant=None, processing_activity_id=None, **fields
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
        started = time.perf_counter()
        now = self.clock.now()
        policy = self.current_policy()
        decision = decide(policy, request, now.timestamp())
        entry = self._decision_entry(ctx, event, decision, now, participant_id, fields, policy)
        appended = self.audit.append(entry, now, self.audit_timeout)
        return self._outcome(ctx, event, request, decision, appended.seq, participant_id, started)

    async def authorize_async(
        self,
        ctx: RequestContext,
        event: str,
        request: AccessRequest,
        participant_id: str | None,
        routed: Callable[[Iterable[str]], dict[str, Any]] | None = None,
        **fields: Any,
    ) -> AuthorizedAccess:
        """As `authorize`, awaiting the durable commit instead of blocking a thread.

        `routed` returns the entry's fields naming where the permitted categories are fetched from
        (brokered sources): logged with the decision, before any source is called.
        """
        started = time.perf_counter()
        now = self.clock.now()
        policy = self.current_policy()
        decision = decide(policy, request, now.timestamp())
        if routed is not None and decision.permitted:
            fields = {**fields, **routed(decision.fields_by_category)}
        entry = self._decision_entry(ctx, event, decision, now, participant_id, fields, policy)
        appended = await self.audit.append_async(entry, now, self.audit_timeout)
        return self._outcome(ctx, event, request, decision, appended.seq, participant_id, started)

    async def authorize_listing_async(
        self,
        ctx: RequestContext,
        event: str,
        request: AccessRequest,
        fetch: Callable[[ListingAccess], Awaitable[Sequence[tuple[str, T]]]],
        limit: int,
        after: str | None,
    ) -> tuple[AuthorizedAccess, Sequence[tuple[str, T]]]:
        """Decide a list request; on permit fetch (participant id, item) rows with the minted listing
        access and log exactly which participants are released, before returning them."""
        started = time.perf_counter()
        now = self.clock.now()
        policy = self.current_policy()
        decision = decide(policy, request, now.timestamp())
        rows: Sequence[tuple[str, T]] = ()
        if decision.permitted:
            rows = await fetch(ListingAccess(_MINT, decision, ctx.principal.organisation, limit, after))
        fields = {"regions": sorted(decision.visible_regions), "participants": [pid for pid, _ in rows]}
        entry = self._decision_entry(ctx, event, decision, now, None, fields, policy)
        appended = await self.audit.append_async(entry, now, self.audit_timeout)
        return self._outcome(ctx, event, request, decision, appended.seq, None, started), rows

    def decide_regions(self, requests: dict[str, AccessRequest]) -> dict[str, Decision]:
        """Return the decision for each region's request now (pure; nothing is logged yet)."""
        now = self.clock.now().timestamp()
        policy = self.current_policy()
        return {region: decide(policy, request, now) for region, request in requests.items()}

    def authorize_import(
        self, ctx: RequestContext, event: str, decisions: dict[str, Decision], refuse: str | None, **fields: Any
    ) -> ImportGrant:
        """Log one entry for a whole file import (its counts, regions, rules), durably; return the grant.

        `decisions` are the regions the accepted rows fall in, each permitted (`decide_regions`);
        `refuse` names why the import is refused as a whole (the entry is then a denial, raised).
        """
        now = self.clock.now()
        policy = self.current_policy()
        permits = [d for d in decisions.values() if d.permitted]
        rule_ids = sorted({r for d in permits for r in d.rule_ids})
        reason = refuse or ("permitted" if permits else "no_rows")
        entry = self._entry(
            ctx,
            event,
            now,
            policy,
            decision="deny" if refuse or not permits else "permit",
            reason=reason,
            participant=None,
            processing_activity_id=permits[0].processing_activity_id if permits else None,
            rule_ids=rule_ids,
            legal_bases=sorted({b for d in permits for b in d.legal_bases}),
            covenants=sorted({c for d in permits for c in d.covenant_ids}),
            regions=sorted(decisions),
            **fields,
        )
        seq = self.audit.append(entry, now, self.audit_timeout).seq
        if refuse or not permits:
            self._log_denial(ctx, event, reason, seq)
            raise Denied(reason, f"The import is refused: {reason}.", seq)
        return ImportGrant(_MINT, dict(decisions), seq, ctx.principal.organisation)

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
        started: float,
    ) -> AuthorizedAccess:
        if self.observer is not None:
            self.observer("permit" if decision.permitted else "deny", time.perf_counter() - started)
        if not decision.permitted:
            self._log_denial(ctx, event, decision.reason.value, seq)
            raise Denied(decision.reason.value, decision.reason_text, seq, decision.hides_existence)
        return AuthorizedAccess(
            _MINT, participant_id, decision, seq, ctx.principal.organisation, request.operation, ctx.trace
        )
