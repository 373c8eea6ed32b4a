"""Facts the documents are made of, derived from the configuration exactly as the decision reads it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.dpia.durations import approx_days, in_words
from gateway.policies.model import (
    Covenant,
    DataCategory,
    GdprRole,
    Grant,
    Operation,
    Organisation,
    PolicyConfig,
    Purpose,
    RetentionRule,
    Sensitivity,
    SharingRule,
)

TYPE_LABEL: dict[Sensitivity, str] = {
    Sensitivity.ORDINARY: "ordinary",
    Sensitivity.SPECIAL: "special (art. 9)",
    Sensitivity.CRIMINAL: "criminal (art. 10)",
    Sensitivity.NATIONAL_ID: "national id (UAVG art. 46)",
}
ROLE_LABEL: dict[GdprRole, str] = {
    GdprRole.JOINT_CONTROLLER: "joint controller",
    GdprRole.CONTROLLER: "controller",
    GdprRole.PROCESSOR: "processor",
    GdprRole.RECIPIENT: "recipient",
}
OPERATION_VERB: dict[Operation, str] = {
    Operation.READ: "read",
    Operation.WRITE: "write",
    Operation.LIST: "list",
    Operation.REGISTER: "register",
}
_RANK = (Sensitivity.ORDINARY, Sensitivity.NATIONAL_ID, Sensitivity.CRIMINAL, Sensitivity.SPECIAL)


@dataclass(frozen=True)
class Access:
    """One organisation's permission by one rule: an operation on one category (None: listing)."""

    organisation: str
    operation: Operation
    purpose: str
    category: str | None
    fields: tuple[str, ...]
    rule: str
    roles: tuple[str, ...]
    covenants: tuple[str, ...]  # the rule's covenants to which the organisation is a party


def by_id(config: PolicyConfig) -> tuple[dict[str, Organisation], dict[str, DataCategory], dict[str, Covenant]]:
    """Return organisations, categories and covenants by id."""
    return (
        {o.id: o for o in config.organisations},
        {c.id: c for c in config.categories},
        {c.id: c for c in config.covenants},
    )


def purpose_of(config: PolicyConfig, purpose_id: str) -> Purpose:
    """Return the purpose with this id."""
    return next(p for p in config.purposes if p.id == purpose_id)


def granted_fields(category: DataCategory, grant: Grant) -> tuple[str, ...]:
    """Return the fields a grant names; '*' never includes national-id fields (as the decision reads it)."""
    if grant.fields == "*":
        return tuple(
            f.name for f in category.fields if category.field_sensitivity(f.name) is not Sensitivity.NATIONAL_ID
        )
    return tuple(grant.fields)


def strongest_type(category: DataCategory, fields: tuple[str, ...]) -> Sensitivity:
    """Return the most sensitive type among these fields of the category."""
    kinds = {category.field_sensitivity(f) for f in fields} or {category.sensitivity}
    return max(kinds, key=_RANK.index)


def named_recipients(config: PolicyConfig, rule: SharingRule) -> list[Organisation]:
    """Return the organisations a rule names, by id or by kind."""
    return [o for o in config.organisations if o.id in rule.recipient.organisations or o.kind in rule.recipient.kinds]


def party_role(covenant: Covenant, organisation: str) -> GdprRole | None:
    """Return the organisation's GDPR role under the covenant, or None when it is no party."""
    return next((p.gdpr_role for p in covenant.parties if p.organisation == organisation), None)


def served_recipients(config: PolicyConfig, rule: SharingRule) -> list[Organisation]:
    """Return the organisations a rule can serve: named, and party to one of its covenants."""
    _, _, covenants = by_id(config)
    return [
        o
        for o in named_recipients(config, rule)
        if any(c in covenants and party_role(covenants[c], o.id) is not None for c in rule.covenants)
    ]


def rules_for(config: PolicyConfig, purpose_id: str) -> list[SharingRule]:
    """Return the rules of one purpose, in configuration order."""
    return [r for r in config.rules if r.purpose == purpose_id]


def effective_access(config: PolicyConfig) -> list[Access]:
    """Return every permission the configuration can ever give, per organisation, rule and category."""
    _, categories, covenants = by_id(config)
    out: list[Access] = []
    for rule in config.rules:
        for org in served_recipients(config, rule):
            roles = tuple(r for r in rule.recipient.roles if r in org.roles)
            under = tuple(c for c in rule.covenants if c in covenants and party_role(covenants[c], org.id) is not None)
            for op in rule.operations:
                if op is Operation.LIST:
                    out.append(Access(org.id, op, rule.purpose, None, (), rule.id, roles, under))
                    continue
                for grant in rule.grants:
                    fields = granted_fields(categories[grant.category], grant)
                    out.append(Access(org.id, op, rule.purpose, grant.category, fields, rule.id, roles, under))
    return out


def categories_of(config: PolicyConfig, purpose_id: str) -> dict[str, tuple[str, ...]]:
    """Return the categories the rules of a purpose grant, with the union of their fields (config order)."""
    _, categories, _ = by_id(config)
    union: dict[str, set[str]] = {}
    for rule in rules_for(config, purpose_id):
        for grant in rule.grants:
            union.setdefault(grant.category, set()).update(granted_fields(categories[grant.category], grant))
    return {c.id: tuple(f.name for f in c.fields if f.name in union[c.id]) for c in config.categories if c.id in union}


def covenants_of(config: PolicyConfig, purpose_id: str) -> list[Covenant]:
    """Return the covenants the rules of a purpose operate under (config order)."""
    named = {c for r in rules_for(config, purpose_id) for c in r.covenants}
    return [c for c in config.covenants if c.id in named]


def retention_for(config: PolicyConfig, applies_to: str) -> RetentionRule | None:
    """Return the retention rule of a category or record kind, if any."""
    return next((r for r in config.retention if r.applies_to == applies_to), None)


def moment(value: datetime, zone: str) -> str:
    """Return a covenant moment as '2024-12-31 23:59:59 Europe/Amsterdam' (as written in the config)."""
    if value.tzinfo is not None:
        return value.isoformat(sep=" ")
    return f"{value.isoformat(sep=' ')} {zone}"


def covenant_period(covenant: Covenant) -> str:
    """Return 'from … until … (inclusive)' in the covenant's own time zone."""
    start = moment(covenant.valid_from, covenant.timezone)
    end = moment(covenant.valid_until, covenant.timezone)
    return f"from {start} until {end} (inclusive)"


def join_words(words: list[str]) -> str:
    """Return 'A', 'A and B' or 'A, B and C' ('nobody' for none)."""
    if not words:
        return "nobody"
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + " and " + words[-1]


def org_names(organisations: list[Organisation] | tuple[Organisation, ...]) -> str:
    """Return the organisations' names as 'A, B and C'."""
    return join_words([o.name for o in organisations])


TRIGGER_WORDS = {
    "covenant_end": "the covenant's end",
    "case_closed": "the case is closed",
    "decision_final": "the decision is final",
    "provision_end": "the provision ends",
    "recorded": "recording",
}


def retention_phrase(rule: RetentionRule) -> str:
    """Return e.g. 'destroyed 6 months after the covenant's end' or 'kept permanently (archived)'."""
    if rule.action == "archive":
        return "kept permanently (archived)"
    trigger = TRIGGER_WORDS.get(rule.trigger.value, rule.trigger.value)
    if rule.duration is not None and approx_days(rule.duration) == 0:
        return f"destroyed at {trigger}"
    return f"destroyed {in_words(rule.duration)} after {trigger}"


def sentence(words: str) -> str:
    """Return `words` with a capital first letter."""
    return words[:1].upper() + words[1:]


# The mandate model and the legal-hold flags come with the covenant-lifecycle work; read them so that
# a configuration without them (or an older revision) is described the same way as before.
def mandates_of(config: PolicyConfig) -> tuple[Any, ...]:
    """Return the configuration's mandate decisions (none when the model has none)."""
    return tuple(getattr(config, "mandates", ()))


def mandates_carrying(config: PolicyConfig, rule_ids: set[str]) -> list[Any]:
    """Return the mandates that carry any of these rules."""
    return [m for m in mandates_of(config) if rule_ids & set(m.rules)]


def after_end_under_hold(rule: SharingRule) -> bool:
    """Return whether the rule still applies after its covenant's end for a participant under a legal hold."""
    return bool(getattr(rule, "during_legal_hold_after_end", False))


def mandate_period(mandate: Any) -> str:
    """Return 'from … until …' or 'from … until withdrawn'."""
    start = moment(mandate.valid_from, mandate.timezone)
    if mandate.valid_until is None:
        return f"from {start} until withdrawn"
    return f"from {start} until {moment(mandate.valid_until, mandate.timezone)} (inclusive)"
