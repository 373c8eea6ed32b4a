"""Explain the difference between two configurations in sentences a privacy officer reads."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from gateway.dpia.diff_access import access_changes
from gateway.dpia.durations import approx_days, in_words
from gateway.dpia.facts import (
    ROLE_LABEL,
    TRIGGER_WORDS,
    TYPE_LABEL,
    after_end_under_hold,
    basis_text,
    covenant_period,
    join_words,
    mandate_period,
    mandates_of,
    moment,
    retention_phrase,
    sentence,
)
from gateway.dpia.lang import speaking
from gateway.policies.model import Covenant, DataCategory, LegalBasis, PolicyConfig, Purpose, RetentionRule

T = TypeVar("T")


def _pairs(
    old: tuple[T, ...], new: tuple[T, ...], key: Callable[[T], str]
) -> tuple[list[T], list[T], list[tuple[T, T]]]:
    """Return (added, removed, kept as (old, new)) by key, in configuration order."""
    before, after = {key(x): x for x in old}, {key(x): x for x in new}
    added = [x for k, x in after.items() if k not in before]
    removed = [x for k, x in before.items() if k not in after]
    kept = [(before[k], x) for k, x in after.items() if k in before]
    return added, removed, kept


def _basis(basis: LegalBasis | None) -> str:
    return "none" if basis is None else f"{basis.dpv} ({basis_text(basis).strip()})"


def _organisations(old: PolicyConfig, new: PolicyConfig) -> list[str]:
    added, removed, kept = _pairs(old.organisations, new.organisations, lambda o: o.id)
    out = [f"New organisation: {o.name} ({o.kind.value}, regions {', '.join(o.regions)})." for o in added]
    out += [f"{o.name} is no longer an organisation in the configuration." for o in removed]
    for a, b in kept:
        if a.name != b.name:
            out.append(f"Organisation {a.id} is now called {b.name} (was {a.name}).")
        if a.kind != b.kind:
            out.append(f"{b.name} is now of kind {b.kind.value} (was {a.kind.value}).")
        if a.regions != b.regions:
            out.append(f"{b.name} now works in {', '.join(b.regions)} (was {', '.join(a.regions)}).")
        if a.roles != b.roles:
            out.append(f"{b.name} now has the acting roles {', '.join(b.roles)} (was {', '.join(a.roles)}).")
        if a.oin != b.oin:
            out.append(f"The OIN of {b.name} is now {b.oin} (was {a.oin}).")
    return out


def _covenant(a: Covenant, b: Covenant, names: dict[str, str]) -> list[str]:
    out = []
    if a.ends_at != b.ends_at:
        direction = "later" if b.ends_at > a.ends_at else "earlier"
        out.append(
            f"Covenant {b.id} now ends {direction}: in force until {moment(b.valid_until, b.timezone)} "
            f"(was {moment(a.valid_until, a.timezone)})."
        )
    if a.starts_at != b.starts_at:
        out.append(
            f"Covenant {b.id} now starts {moment(b.valid_from, b.timezone)} (was {moment(a.valid_from, a.timezone)})."
        )
    roles_a = {p.organisation: p.gdpr_role for p in a.parties}
    roles_b = {p.organisation: p.gdpr_role for p in b.parties}
    for org, role in roles_b.items():
        if org not in roles_a:
            out.append(f"{names.get(org, org)} joins covenant {b.id} as {ROLE_LABEL[role]}.")
        elif roles_a[org] != role:
            was = ROLE_LABEL[roles_a[org]]
            out.append(f"{names.get(org, org)} is now {ROLE_LABEL[role]} under covenant {b.id} (was {was}).")
    out += [f"{names.get(org, org)} is no longer a party to covenant {b.id}." for org in roles_a if org not in roles_b]
    if a.regions != b.regions:
        out.append(f"Covenant {b.id} now covers {', '.join(b.regions)} (was {', '.join(a.regions)}).")
    if a.mandate != b.mandate:
        out.append(f"The mandate of covenant {b.id} is now '{b.mandate or 'none'}' (was '{a.mandate or 'none'}').")
    if a.title != b.title:
        out.append(f"Covenant {b.id} is now titled '{b.title}' (was '{a.title}').")
    return out


def _covenants(old: PolicyConfig, new: PolicyConfig) -> list[str]:
    names = {o.id: o.name for o in (*old.organisations, *new.organisations)}
    added, removed, kept = _pairs(old.covenants, new.covenants, lambda c: c.id)
    out = [
        f"New covenant {c.id} ('{c.title}'), {covenant_period(c)}, with "
        f"{join_words([names.get(p.organisation, p.organisation) for p in c.parties])}."
        for c in added
    ]
    out += [f"Covenant {c.id} ('{c.title}') is removed from the configuration." for c in removed]
    for a, b in kept:
        out += _covenant(a, b, names)
    return out


def _purpose(a: Purpose, b: Purpose) -> list[str]:
    out = []
    label = f"purpose '{b.name}' ({b.id})"
    if a.legal_basis != b.legal_basis:
        out.append(f"The legal basis of {label} is now {_basis(b.legal_basis)}; was {_basis(a.legal_basis)}.")
    for title, x, y in (
        ("art. 9 exception", a.art9_condition, b.art9_condition),
        ("art. 10 basis", a.art10_condition, b.art10_condition),
    ):
        if x != y:
            if x is None:
                out.append(f"The {label} now names an {title}: {_basis(y)}.")
            elif y is None:
                out.append(f"The {label} no longer names an {title} (was {_basis(x)}).")
            else:
                out.append(f"The {title} of {label} is now {_basis(y)}; was {_basis(x)}.")
    if a.aggregate_only != b.aggregate_only:
        out.append(
            f"The {label} "
            + (
                "now serves aggregate figures only."
                if b.aggregate_only
                else "may now serve a person's record (no longer aggregate only)."
            )
        )
    if a.processing_activity_id != b.processing_activity_id:
        out.append(
            f"The {label} is now processing activity {b.processing_activity_id} (was {a.processing_activity_id})."
        )
    if a.dpv_purpose != b.dpv_purpose:
        out.append(f"The {label} is now described by the DPV term {b.dpv_purpose} (was {a.dpv_purpose}).")
    if a.name != b.name or a.description != b.description:
        out.append(f"The name or description of {label} changed.")
    return out


def _purposes(old: PolicyConfig, new: PolicyConfig) -> list[str]:
    added, removed, kept = _pairs(old.purposes, new.purposes, lambda p: p.id)
    out = [f"New purpose '{p.name}' ({p.id}), processing activity {p.processing_activity_id}." for p in added]
    out += [f"Purpose '{p.name}' ({p.id}) is removed." for p in removed]
    for a, b in kept:
        out += _purpose(a, b)
    return out


def _category(a: DataCategory, b: DataCategory) -> list[str]:
    out = []
    label = f"{b.id} data ('{b.name}')"
    fa, fb = {f.name for f in a.fields}, {f.name for f in b.fields}
    out += [
        f"{label} has a new field {f.name} ({TYPE_LABEL[b.field_sensitivity(f.name)]})."
        for f in b.fields
        if f.name not in fa
    ]
    out += [f"{label} no longer has the field {f.name}." for f in a.fields if f.name not in fb]
    for f in b.fields:
        if f.name in fa and a.field_sensitivity(f.name) != b.field_sensitivity(f.name):
            out.append(
                f"Field {b.id}.{f.name} is now {TYPE_LABEL[b.field_sensitivity(f.name)]} "
                f"(was {TYPE_LABEL[a.field_sensitivity(f.name)]})."
            )
    if a.sources != b.sources:
        out.append(f"The source of {label} is now {', '.join(b.sources)} (was {', '.join(a.sources)}).")
    if a.dpv_category != b.dpv_category:
        out.append(f"{label} is now described by the DPV term {b.dpv_category} (was {a.dpv_category}).")
    return out


def _categories(old: PolicyConfig, new: PolicyConfig) -> list[str]:
    added, removed, kept = _pairs(old.categories, new.categories, lambda c: c.id)
    out = [f"New data category {c.id} ('{c.name}', {TYPE_LABEL[c.sensitivity]})." for c in added]
    out += [f"Data category {c.id} ('{c.name}') is removed." for c in removed]
    for a, b in kept:
        out += _category(a, b)
    return out


def _rules(old: PolicyConfig, new: PolicyConfig) -> list[str]:
    _, _, kept = _pairs(old.rules, new.rules, lambda r: r.id)
    out = []
    for a, b in kept:
        if a.recipient.roles != b.recipient.roles:
            out.append(
                f"Rule {b.id} now serves the roles {', '.join(b.recipient.roles)} (was {', '.join(a.recipient.roles)})."
            )
        if a.covenants != b.covenants:
            out.append(f"Rule {b.id} now applies under {', '.join(b.covenants)} (was {', '.join(a.covenants)}).")
        if a.condition != b.condition:
            out.append(f"Rule {b.id} now applies to participants by {b.condition} (was {a.condition}).")
        if a.legal_basis != b.legal_basis:
            out.append(f"Rule {b.id} now rests on {_basis(b.legal_basis)}; was {_basis(a.legal_basis)}.")
        if after_end_under_hold(a) != after_end_under_hold(b):
            out.append(
                f"Rule {b.id} "
                + (
                    "now also applies after its covenant's end for a participant under a legal hold."
                    if after_end_under_hold(b)
                    else "no longer applies after its covenant's end under a legal hold."
                )
            )
    return out


def _mandates(old: PolicyConfig, new: PolicyConfig) -> list[str]:
    names = {o.id: o.name for o in (*old.organisations, *new.organisations)}
    added, removed, kept = _pairs(mandates_of(old), mandates_of(new), lambda m: str(m.id))
    out = [
        f"New mandate {m.id} ('{m.reference}'): {join_words([names.get(o, o) for o in m.mandataries])} "
        f"{'acts' if len(m.mandataries) == 1 else 'act'} in the name of {names.get(m.mandator, m.mandator)} for "
        f"rules {', '.join(m.rules)}, {mandate_period(m)}."
        for m in added
    ]
    out += [f"Mandate {m.id} ('{m.reference}') is removed from the configuration." for m in removed]
    for a, b in kept:
        if a.valid_until != b.valid_until or a.valid_from != b.valid_from:
            out.append(f"Mandate {b.id} is now in force {mandate_period(b)} (was {mandate_period(a)}).")
        if a.mandataries != b.mandataries or a.mandator != b.mandator:
            out.append(
                f"Under mandate {b.id} {join_words([names.get(o, o) for o in b.mandataries])} now act in the name of "
                f"{names.get(b.mandator, b.mandator)} (was {join_words([names.get(o, o) for o in a.mandataries])} for "
                f"{names.get(a.mandator, a.mandator)})."
            )
        if a.rules != b.rules or a.covenants != b.covenants:
            out.append(
                f"Mandate {b.id} now carries rules {', '.join(b.rules)} under {', '.join(b.covenants)} "
                f"(was {', '.join(a.rules)} under {', '.join(a.covenants)})."
            )
    return out


def _retention_label(config: PolicyConfig, applies_to: str) -> str:
    found = next((c for c in config.categories if c.id == applies_to), None)
    return f"{found.name} ({applies_to})" if found else applies_to.replace("_", " ")


def _retention_change(a: RetentionRule, b: RetentionRule, label: str) -> list[str]:
    out = []
    if a.duration != b.duration:
        da, db = approx_days(a.duration), approx_days(b.duration)
        verb = "shortened" if db < da else "lengthened" if db > da else "rewritten"
        old = f"{a.duration} ({in_words(a.duration)})" if a.duration else "permanent"
        new = f"{b.duration} ({in_words(b.duration)})" if b.duration else "permanent"
        out.append(f"Retention of {label} {verb} from {old} to {new}.")
    if a.action != b.action:
        done = {"destroy": "destroyed", "archive": "archived"}
        out.append(sentence(f"{label} is now {done[b.action]} (was {done[a.action]})."))
    if a.trigger != b.trigger:
        was = TRIGGER_WORDS.get(a.trigger.value, a.trigger.value)
        out.append(f"The retention clock of {label} now starts at {TRIGGER_WORDS.get(b.trigger.value)} (was {was}).")
    if a.legal_source != b.legal_source:
        out.append(f"The legal source of the retention of {label} is now '{b.legal_source}' (was '{a.legal_source}').")
    if a.suggestion != b.suggestion:
        out.append(
            f"The retention of {label} is "
            + ("now marked a suggestion, not law." if b.suggestion else "no longer a suggestion: it rests on law.")
        )
    return out


def _retention(old: PolicyConfig, new: PolicyConfig) -> list[str]:
    added, removed, kept = _pairs(old.retention, new.retention, lambda r: r.applies_to)
    out = [
        sentence(f"{_retention_label(new, r.applies_to)} now has a retention rule: {retention_phrase(r)}.")
        for r in added
    ]
    out += [sentence(f"{_retention_label(old, r.applies_to)} no longer has a retention rule.") for r in removed]
    for a, b in kept:
        out += _retention_change(a, b, _retention_label(new, b.applies_to))
    return out


def _meta(old: PolicyConfig, new: PolicyConfig) -> list[str]:
    out = []
    if old.meta.controller_contact != new.meta.controller_contact:
        out.append(f"The contact for privacy is now {new.meta.controller_contact} (was {old.meta.controller_contact}).")
    if old.meta.status != new.meta.status:
        out.append(f"The status of the configuration is now '{new.meta.status}' (was '{old.meta.status}').")
    if old.meta.title != new.meta.title or old.meta.name != new.meta.name:
        out.append(f"The configuration is now '{new.meta.name}': {new.meta.title}.")
    return out


def explain(old: PolicyConfig, new: PolicyConfig) -> list[str]:
    """Return one sentence per change from `old` to `new` (empty: nothing a privacy officer needs to know).

    The sentences are English for now: the words they borrow from the documents are asked for in English.
    """
    with speaking("en"):
        return [
            *_meta(old, new),
            *_organisations(old, new),
            *_covenants(old, new),
            *_purposes(old, new),
            *_categories(old, new),
            *access_changes(old, new),
            *_rules(old, new),
            *_mandates(old, new),
            *_retention(old, new),
        ]
