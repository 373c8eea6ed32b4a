"""Facts the documents are made of, derived from the configuration exactly as the decision reads it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.dpia.durations import approx_days, in_words
from gateway.dpia.lang import N_, _, tr, written
from gateway.policies.model import (
    Covenant,
    DataCategory,
    GdprRole,
    Grant,
    LegalBasis,
    Operation,
    Organisation,
    PolicyConfig,
    Purpose,
    RetentionRule,
    Sensitivity,
    SharingRule,
)

# Message ids (English); the documents show them in their language through the functions below.
TYPE_LABEL: dict[Sensitivity, str] = {
    Sensitivity.ORDINARY: N_("ordinary"),
    Sensitivity.SPECIAL: N_("special (art. 9)"),
    Sensitivity.CRIMINAL: N_("criminal (art. 10)"),
    Sensitivity.NATIONAL_ID: N_("national id (UAVG art. 46)"),
}
ROLE_LABEL: dict[GdprRole, str] = {
    GdprRole.JOINT_CONTROLLER: N_("joint controller"),
    GdprRole.CONTROLLER: N_("controller"),
    GdprRole.PROCESSOR: N_("processor"),
    GdprRole.RECIPIENT: N_("recipient"),
}
ROLE_PLURAL: dict[GdprRole, str] = {
    GdprRole.JOINT_CONTROLLER: N_("Joint controllers"),
    GdprRole.CONTROLLER: N_("Controllers"),
    GdprRole.PROCESSOR: N_("Processors"),
    GdprRole.RECIPIENT: N_("Recipients"),
}
OPERATION_VERB: dict[Operation, str] = {
    Operation.READ: N_("read"),
    Operation.WRITE: N_("write"),
    Operation.LIST: N_("list"),
    Operation.REGISTER: N_("register"),
}


def basis_text(basis: LegalBasis) -> str:
    """Return what a legal basis says, in the documents' language (Dutch, or its English twin)."""
    return written(basis.text, basis.text_en)


def type_label(kind: Sensitivity) -> str:
    """Return the type of a data item as the documents name it (ordinary, special (art. 9), ...)."""
    return tr(TYPE_LABEL[kind])


def role_label(role: GdprRole) -> str:
    """Return a party's GDPR role as the documents name it (joint controller, controller, ...)."""
    return tr(ROLE_LABEL[role])


def operation_verb(operation: Operation) -> str:
    """Return an operation as the documents name it (read, write, list, register)."""
    return tr(OPERATION_VERB[operation])


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
    covenants = by_id(config)[2]
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
    _orgs, categories, covenants = by_id(config)
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
    categories = by_id(config)[1]
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
    return _("from {start} until {end} (inclusive)", start=start, end=end)


def join_words(words: list[str]) -> str:
    """Return 'A', 'A and B' or 'A, B and C' ('nobody' for none)."""
    if not words:
        return _("nobody")
    if len(words) == 1:
        return words[0]
    return _("{some} and {last}", some=", ".join(words[:-1]), last=words[-1])


def org_names(organisations: list[Organisation] | tuple[Organisation, ...]) -> str:
    """Return the organisations' names as 'A, B and C'."""
    return join_words([o.name for o in organisations])


TRIGGER_WORDS = {
    "covenant_end": N_("the covenant's end"),
    "case_closed": N_("the case is closed"),
    "decision_final": N_("the decision is final"),
    "provision_end": N_("the provision ends"),
    "recorded": N_("recording"),
}


TRIGGER_LABEL = {
    "covenant_end": N_("covenant end"),
    "case_closed": N_("case closed"),
    "decision_final": N_("decision final"),
    "provision_end": N_("provision end"),
    "recorded": N_("recorded"),
}


def trigger_label(trigger: str) -> str:
    """Return a retention trigger as a short label (the column "Trigger")."""
    return tr(TRIGGER_LABEL.get(trigger, trigger))


def retention_phrase(rule: RetentionRule) -> str:
    """Return e.g. 'destroyed 6 months after the covenant's end' or 'kept permanently (archived)'."""
    if rule.action == "archive":
        return _("kept permanently (archived)")
    trigger = tr(TRIGGER_WORDS.get(rule.trigger.value, rule.trigger.value))
    if rule.duration is not None and approx_days(rule.duration) == 0:
        return _("destroyed at {trigger}", trigger=trigger)
    return _("destroyed {period} after {trigger}", period=in_words(rule.duration), trigger=trigger)


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
        return _("from {start} until withdrawn", start=start)
    return _("from {start} until {end} (inclusive)", start=start, end=moment(mandate.valid_until, mandate.timezone))
