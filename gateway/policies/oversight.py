"""The oversight decision: who may review the log, answer art. 15, see and issue evidence, set holds,
acknowledge notices or move a rehearsal's clock, and until when after the exchange ended.

A pure sibling of `decide()` over the same compiled policy: deny unless an oversight activity in the
configuration (`oversight.yaml`) names this organisation (or its kind) and role for this action, and
the organisation is a party to one of the activity's covenants whose window is open now: from the
covenant's start until its end (a revocation included) plus the activity's aftercare period, and for
activities marked `while_legal_hold`, as long as a legal hold the organisation set runs in a region of
the covenant (an appeal may outlast any fixed period). With a
`covenant` named (a covenant's report, say), that covenant itself must be one of them.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.policies.compiled import CompiledOversight, CompiledPolicy
from gateway.policies.decision import Decision, Reason
from gateway.policies.model import OversightAction


@dataclass(frozen=True, slots=True)
class OversightRequest:
    """The facts of one oversight request."""

    organisation: str
    role: str
    action: OversightAction
    covenant: str | None = None  # the covenant the action concerns, if any


def decide_oversight(policy: CompiledPolicy, request: OversightRequest, now_ts: float) -> Decision:
    """Return the decision on an oversight request at POSIX time `now_ts`; deny unless an activity permits."""
    candidates = policy.oversight_by_action.get(request.action, ())

    def deny(reason: Reason, activity: CompiledOversight | None = None) -> Decision:
        chosen = activity or (candidates[0] if candidates else None)
        return Decision(
            permitted=False,
            reason=reason,
            policy_version=policy.version,
            purpose=chosen.id if chosen else request.action.value,
            processing_activity_id=chosen.processing_activity_id if chosen else None,
        )

    org = policy.organisations.get(request.organisation)
    if org is None:
        return deny(Reason.UNKNOWN_ORGANISATION)
    if request.role not in org.roles:
        return deny(Reason.ROLE_NOT_ALLOWED)
    serving = [a for a in candidates if a.serves(org, request.role)]
    if not serving:
        return deny(Reason.NO_OVERSIGHT_ACTIVITY)
    own = {c.id for c in policy.covenants_by_org.get(org.id, ())}
    if request.covenant is not None and request.covenant not in own:
        return deny(Reason.NOT_A_PARTY, serving[0])
    for activity in serving:
        open_covenants = tuple(
            sorted(
                cov_id
                for cov_id in activity.windows
                if cov_id in own
                and activity.open_for(cov_id, org, now_ts)
                and (request.covenant is None or cov_id == request.covenant)
            )
        )
        if open_covenants:
            return Decision(
                permitted=True,
                reason=Reason.PERMITTED,
                policy_version=policy.version,
                purpose=activity.id,
                processing_activity_id=activity.processing_activity_id,
                rule_ids=(activity.id,),
                covenant_ids=open_covenants,
                bases=(activity.legal_basis,),
            )
    started = any(policy.covenants[c].starts_ts <= now_ts for a in serving for c in a.windows if c in own)
    return deny(Reason.AFTERCARE_ENDED if started else Reason.NO_COVENANT_IN_FORCE, serving[0])


@dataclass(frozen=True, slots=True)
class Standing:
    """Where an organisation stands at one moment: exchanging, in aftercare (oversight roles only), or done."""

    organisation: str
    exchange_in_force: bool
    oversight_roles: frozenset[str]
    ended_at: float | None  # the latest end of its covenants, once none is in force
    aftercare_until: float | None  # the latest end of an open oversight window (aftercare only)

    def allows(self, role: str) -> bool:
        """Return whether a token may carry `role` now."""
        return self.exchange_in_force or role in self.oversight_roles


def standing(policy: CompiledPolicy, organisation: str, now_ts: float) -> Standing:
    """Return the organisation's standing at `now_ts`: which roles a token may still carry, and until when."""
    own = policy.covenants_by_org.get(organisation, ())
    org = policy.organisations.get(organisation)
    if org is None or not own:
        return Standing(organisation, False, frozenset(), None, None)
    if any(c.in_force(now_ts) for c in own):
        return Standing(organisation, True, frozenset(org.roles), None, None)
    ids = {c.id for c in own}
    roles: set[str] = set()
    until: float | None = None
    for activity in policy.oversight.values():
        for cov_id, (_start, end) in activity.windows.items():
            if cov_id in ids and activity.open_for(cov_id, org, now_ts):
                served = {r for r in org.roles if activity.serves(org, r)}
                if served:
                    roles |= served
                    # While a hold keeps it open past its aftercare, it lasts at least until now.
                    end = max(end, now_ts + 1)
                    until = end if until is None else max(until, end)
    started = [c for c in own if c.starts_ts <= now_ts]
    ended_at = max(c.ends_ts for c in started) if started else None
    return Standing(organisation, False, frozenset(roles), ended_at, until)
