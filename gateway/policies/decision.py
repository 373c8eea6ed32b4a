"""The policy decision point: a pure function of (compiled policy, request facts, time) to a Decision.

Deny by default: a request is permitted only when a rule names exactly this organisation (or its
kind), role, purpose and operation, under a covenant in force at that instant to which the
organisation is a party, for a participant in a region of that covenant (and of the organisation,
where the rule says `same_region`). There is no other way to get `permitted=True`.

Lifecycle facts enter through the compiled policy (a revoked covenant ends at its revocation; a rule a
mandate carries stops when the mandate is withdrawn) and through the request (`under_legal_hold`):

| held | legal-procedure purpose | covenant      | rule flag after end | result                                   |
|------|-------------------------|---------------|---------------------|------------------------------------------|
| no   | either                  | in force      | either              | as the rules say                         |
| no   | either                  | ended/revoked | either              | deny `no_covenant_in_force`              |
| yes  | no                      | in force      | either              | deny `participant_under_legal_hold` (*)  |
| yes  | no                      | ended/revoked | either              | deny `no_covenant_in_force`              |
| yes  | yes                     | in force      | either              | as the rules say                         |
| yes  | yes                     | ended/revoked | yes                 | as the rules say (flagged rules only)    |
| yes  | yes                     | ended/revoked | no                  | deny `no_rule_for_purpose`               |

(*) only to a caller that a rule would otherwise serve; anyone else gets the denial it had without
the hold (so a hold never reveals that a participant exists).

An aggregate-only purpose is refused only after the covenant and region checks: outside the regions
of its covenants a caller gets the same hiding denial (404) for every purpose.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from gateway.policies.compiled import CategoryGrant, CompiledPolicy, CompiledRule
from gateway.policies.model import Operation


class Reason(StrEnum):
    """Stable reason codes; they appear in audit entries and problem responses."""

    PERMITTED = "permitted"
    UNKNOWN_PURPOSE = "unknown_purpose"
    UNKNOWN_ORGANISATION = "unknown_organisation"
    ROLE_NOT_ALLOWED = "role_not_allowed"
    AGGREGATE_PURPOSE = "purpose_is_aggregate_only"
    NO_COVENANT_IN_FORCE = "no_covenant_in_force"
    OUTSIDE_COVENANT_REGION = "participant_outside_covenant_region"
    OUTSIDE_RECIPIENT_REGION = "participant_outside_recipient_region"
    NO_RULE = "no_rule_for_purpose"
    CATEGORY_NOT_PERMITTED = "category_not_permitted"
    NOT_SOURCE = "not_source_of_category"
    FIELD_NOT_PERMITTED = "field_not_permitted"
    UNDER_LEGAL_HOLD = "participant_under_legal_hold"
    NO_MANDATE_IN_FORCE = "no_mandate_in_force"
    NO_OVERSIGHT_ACTIVITY = "no_oversight_activity"
    AFTERCARE_ENDED = "aftercare_ended"
    NOT_A_PARTY = "not_a_party"


REASON_TEXT: dict[Reason, str] = {
    Reason.PERMITTED: "A sharing rule in force permits this request.",
    Reason.UNKNOWN_PURPOSE: "The stated purpose is not a processing activity of this gateway.",
    Reason.UNKNOWN_ORGANISATION: "The organisation is not known to this gateway.",
    Reason.ROLE_NOT_ALLOWED: "The acting role is not a role of this organisation.",
    Reason.AGGREGATE_PURPOSE: "This purpose serves aggregate figures only, never a person's record.",
    Reason.NO_COVENANT_IN_FORCE: "No covenant to which the organisation is a party is in force at this moment.",
    Reason.OUTSIDE_COVENANT_REGION: "The participant is not in a region of a covenant in force.",
    Reason.OUTSIDE_RECIPIENT_REGION: "The participant is not in a region of the organisation.",
    Reason.NO_RULE: "No sharing rule permits this organisation and role this operation for this purpose.",
    Reason.CATEGORY_NOT_PERMITTED: "None of the requested categories is permitted for this purpose.",
    Reason.NOT_SOURCE: "The organisation is not the source of this category and may not write it.",
    Reason.FIELD_NOT_PERMITTED: "A field to be written is not permitted for this organisation and purpose.",
    Reason.UNDER_LEGAL_HOLD: "The participant is under a legal hold: access only for the legal procedure.",
    Reason.NO_MANDATE_IN_FORCE: "The mandate that carries the matching rule is not in force at this moment.",
    Reason.NO_OVERSIGHT_ACTIVITY: "No oversight activity permits this organisation and role this action.",
    Reason.AFTERCARE_ENDED: "The covenants have ended and so has the aftercare period of this oversight activity.",
    Reason.NOT_A_PARTY: "The organisation is not a party to this covenant.",
}

# Denials for which the caller may not even learn that the participant exists (answered 404).
HIDES_EXISTENCE = frozenset({Reason.OUTSIDE_COVENANT_REGION, Reason.OUTSIDE_RECIPIENT_REGION, Reason.NOT_A_PARTY})


@dataclass(frozen=True, slots=True)
class AccessRequest:
    """The facts of one request, as the authenticated edge established them."""

    organisation: str
    role: str
    purpose: str
    operation: Operation
    participant_region: str | None = None  # None for list requests
    categories: tuple[str, ...] | None = None  # None: every category the rules permit
    fields: tuple[tuple[str, str], ...] | None = None  # (category, field) pairs a write holds
    under_legal_hold: bool = False  # the participant has an active legal hold (objection, appeal, ...)


@dataclass(frozen=True, slots=True)
class Decision:
    permitted: bool
    reason: Reason
    policy_version: str
    purpose: str
    processing_activity_id: str | None
    grants: tuple[CategoryGrant, ...] = ()
    rule_ids: tuple[str, ...] = ()
    covenant_ids: tuple[str, ...] = ()
    withheld: tuple[str, ...] = ()
    visible_regions: frozenset[str] = field(default_factory=frozenset)
    permitted_fields: dict[str, tuple[str, ...]] = field(default_factory=dict)
    bases: tuple[str, ...] = ()  # legal bases of an oversight decision (no grants)

    @property
    def reason_text(self) -> str:
        """Return the human sentence for the reason code."""
        return REASON_TEXT[self.reason]

    @property
    def hides_existence(self) -> bool:
        """Return whether the caller may not learn that the participant exists."""
        return self.reason in HIDES_EXISTENCE

    @property
    def legal_bases(self) -> tuple[str, ...]:
        """Return the distinct legal bases of the grants, in order."""
        return tuple(dict.fromkeys([*(g.legal_basis for g in self.grants), *self.bases]))

    @property
    def fields_by_category(self) -> dict[str, tuple[str, ...]]:
        """Return the permitted fields per category (union over the matching rules)."""
        return self.permitted_fields


def _union_fields(grants: list[CategoryGrant]) -> dict[str, tuple[str, ...]]:
    out: dict[str, dict[str, None]] = {}
    for g in grants:
        out.setdefault(g.category, {}).update(dict.fromkeys(g.fields))
    return {k: tuple(v) for k, v in out.items()}


def decide(policy: CompiledPolicy, request: AccessRequest, now_ts: float) -> Decision:
    """Return the decision on `request` at POSIX time `now_ts`; deny unless a rule in force permits."""
    purpose = policy.purposes.get(request.purpose)

    def deny(reason: Reason, **extra: object) -> Decision:
        return Decision(
            permitted=False,
            reason=reason,
            policy_version=policy.version,
            purpose=request.purpose,
            processing_activity_id=purpose.processing_activity_id if purpose else None,
            **extra,  # type: ignore[arg-type]
        )

    if purpose is None:
        return deny(Reason.UNKNOWN_PURPOSE)
    org = policy.organisations.get(request.organisation)
    if org is None:
        return deny(Reason.UNKNOWN_ORGANISATION)
    if request.role not in org.roles:
        return deny(Reason.ROLE_NOT_ALLOWED)

    own = policy.covenants_by_org.get(org.id, ())
    in_force = [c for c in own if c.in_force(now_ts)]
    # Under a legal hold, the legal procedure may go on after a covenant ended (flagged rules only).
    hold_procedure = request.under_legal_hold and purpose.legal_procedure
    ended = [c for c in own if c.starts_ts <= now_ts and not c.in_force(now_ts)] if hold_procedure else []
    if not in_force and not ended:
        return deny(Reason.NO_COVENANT_IN_FORCE)
    region = request.participant_region
    if region is None and request.operation is not Operation.LIST:
        return deny(Reason.OUTSIDE_COVENANT_REGION)  # a record without a known region matches no covenant
    if region is not None:
        in_force = [c for c in in_force if region in c.regions]
        ended = [c for c in ended if region in c.regions]
        if not in_force and not ended:
            return deny(Reason.OUTSIDE_COVENANT_REGION)
    if purpose.aggregate_only:
        # Only after the region checks: refusing a record for this reason says the participant exists.
        return deny(Reason.AGGREGATE_PURPOSE)
    covenant_ids = {c.id for c in in_force}
    ended_ids = {c.id for c in ended}
    org_regions = frozenset(org.regions)

    matching: list[CompiledRule] = []
    used: set[str] = set()
    region_miss = mandate_miss = False
    visible: set[str] = set()
    for rule in policy.rules_by_purpose_op.get((purpose.id, request.operation), ()):
        rule_covenants = rule.covenants & covenant_ids
        if rule.after_end_under_hold and ended_ids:
            rule_covenants |= rule.covenants & ended_ids
        if not rule_covenants or not rule.serves(org, request.role):
            continue
        if rule.mandate_windows:
            carried = frozenset(c for c in rule_covenants if rule.mandated(c, now_ts))
            if not carried:
                mandate_miss = True
                continue
            rule_covenants = carried
        if region is not None and rule.same_region and region not in org_regions:
            region_miss = True
            continue
        matching.append(rule)
        used |= rule_covenants
        for cov_id in rule_covenants:
            regions = policy.covenants[cov_id].regions
            visible |= regions & org_regions if rule.same_region else regions
    if not matching:
        if region_miss:
            return deny(Reason.OUTSIDE_RECIPIENT_REGION)
        return deny(Reason.NO_MANDATE_IN_FORCE if mandate_miss else Reason.NO_RULE)
    if request.under_legal_hold and not purpose.legal_procedure:
        # Said only to a caller a rule would otherwise serve: it already knows the participant exists.
        return deny(Reason.UNDER_LEGAL_HOLD)

    grants = [g for r in matching for g in r.category_grants]
    withheld: tuple[str, ...] = ()
    if request.categories is not None:
        wanted = set(request.categories)
        withheld = tuple(c for c in request.categories if c not in {g.category for g in grants})
        grants = [g for g in grants if g.category in wanted]
        if not grants and request.operation is not Operation.LIST:
            return deny(Reason.CATEGORY_NOT_PERMITTED, withheld=withheld)
    if request.operation in (Operation.WRITE, Operation.REGISTER):
        for g in grants:
            sources = policy.sources[g.category]
            if org.id not in sources and org.kind.value not in sources:
                return deny(Reason.NOT_SOURCE, withheld=withheld)
        if withheld:
            return deny(Reason.CATEGORY_NOT_PERMITTED, withheld=withheld)
        if request.fields is not None:
            granted = {(g.category, f) for g in grants for f in g.fields}
            if not set(request.fields) <= granted:
                return deny(Reason.FIELD_NOT_PERMITTED)

    rule_ids = tuple(dict.fromkeys(r.id for r in matching))
    used_covenants = tuple(sorted(used))
    return Decision(
        permitted=True,
        reason=Reason.PERMITTED,
        policy_version=policy.version,
        purpose=purpose.id,
        processing_activity_id=purpose.processing_activity_id,
        grants=tuple(grants),
        rule_ids=rule_ids,
        covenant_ids=used_covenants,
        withheld=withheld,
        visible_regions=frozenset(visible),
        permitted_fields=_union_fields(grants),
    )
