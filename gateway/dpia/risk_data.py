"""Risks in what data goes where: sensitive data to NGOs or beyond its source, national ids, free text."""

from __future__ import annotations

from gateway.dpia.facts import (
    by_id,
    effective_access,
    granted_fields,
    join_words,
    operation_verb,
    served_recipients,
    type_label,
)
from gateway.dpia.lang import _
from gateway.dpia.risk_model import Finding, finding
from gateway.policies.model import Operation, OrganisationKind, PolicyConfig, Sensitivity


def _items(category: str, fields: tuple[str, ...]) -> str:
    """Return fields of a category as 'screening.{signals, notes}'."""
    return category + ".{" + ", ".join(fields) + "}"


def _sensitive_grants(config: PolicyConfig, kind: Sensitivity, ngo: bool) -> list[str]:
    """Return where reads give `kind` data to NGOs (ngo=True) or to other non-source parties (ngo=False)."""
    categories = by_id(config)[1]
    orgs = {o.id: o for o in config.organisations}
    grouped: dict[tuple[str, str, tuple[str, ...]], list[str]] = {}
    for access in effective_access(config):
        if access.category is None or access.operation is not Operation.READ:
            continue
        category = categories[access.category]
        org = orgs[access.organisation]
        sensitive = tuple(f for f in access.fields if category.field_sensitivity(f) is kind)
        is_source = org.id in category.sources or org.kind.value in category.sources
        if not sensitive or (org.kind is OrganisationKind.NGO) != ngo or (not ngo and is_source):
            continue
        grouped.setdefault((access.rule, category.id, sensitive), []).append(org.name)
    return [
        _(
            "rules.yaml: rule '{rule}': {data} to {recipients}",
            rule=rule,
            data=_items(cid, fields),
            recipients=join_words(names),
        )
        for (rule, cid, fields), names in grouped.items()
    ]


def _is_free_text(*descriptions: str | None) -> bool:
    """Return whether a field's descriptions call it free text (in Dutch or in English)."""
    words = " ".join(d for d in descriptions if d).lower()
    return "vrije tekst" in words or "free text" in words


def special_to_ngo(config: PolicyConfig) -> Finding | None:
    return finding(
        _sensitive_grants(config, Sensitivity.SPECIAL, ngo=True),
        id="C-special-to-ngo",
        title=_("Special-category (art. 9) data is given to an NGO"),
        likelihood="medium",
        impact="high",
        motivation=_(
            "Health data leaves public bodies for a private foundation; the art. 9(2) exception holds only "
            "while the recipients are health professionals bound by secrecy."
        ),
        measures=("M01", "M03", "M09"),
        advice=_(
            "Verify in the covenant that only staff bound by professional secrecy act in the named role; "
            "review the NGO's own retention and security."
        ),
    )


def criminal_to_ngo(config: PolicyConfig) -> Finding | None:
    return finding(
        _sensitive_grants(config, Sensitivity.CRIMINAL, ngo=True),
        id="C-criminal-to-ngo",
        title=_("Criminal (art. 10) data is given to an NGO"),
        likelihood="medium",
        impact="high",
        motivation=_("Police data in private hands needs a basis under art. 10 / UAVG art. 33 or the Wpg."),
        measures=("M01", "M03", "M09"),
        advice=_("Remove the grant unless the jurists confirm a specific basis for this NGO."),
    )


def sensitive_beyond_source(config: PolicyConfig) -> Finding | None:
    occurrences = _sensitive_grants(config, Sensitivity.SPECIAL, ngo=False)
    occurrences += _sensitive_grants(config, Sensitivity.CRIMINAL, ngo=False)
    return finding(
        occurrences,
        id="C-sensitive-beyond-source",
        title=_("Special or criminal data is disclosed to public bodies other than its source"),
        likelihood="medium",
        impact="medium",
        motivation=_(
            "Each disclosure widens the circle that holds sensitive data; the purpose's art. 9 / art. 10 "
            "condition must cover each recipient."
        ),
        measures=("M01", "M03", "M05", "M09"),
        advice=_("Confirm per recipient that the condition applies and that the fields are the minimum needed."),
    )


def national_id_released(config: PolicyConfig) -> Finding | None:
    categories = by_id(config)[1]
    occurrences = []
    for rule in config.rules:
        recipients = ", ".join(o.name for o in served_recipients(config, rule))
        for grant in rule.grants:
            category = categories[grant.category]
            ids = [
                f for f in granted_fields(category, grant) if category.field_sensitivity(f) is Sensitivity.NATIONAL_ID
            ]
            if ids:
                ops = "/".join(operation_verb(o) for o in rule.operations)
                occurrences.append(
                    _(
                        "rules.yaml: rule '{rule}' ({operations}): {data} to {recipients}",
                        rule=rule.id,
                        operations=ops,
                        data=_items(category.id, tuple(ids)),
                        recipients=recipients,
                    )
                )
    return finding(
        occurrences,
        id="C-national-id-released",
        title=_("National identification numbers are released"),
        likelihood="medium",
        impact="medium",
        motivation=_(
            "UAVG art. 46 allows a national id number only where a law prescribes its use; each "
            "recipient needs its own statutory ground."
        ),
        measures=("M04", "M13"),
        advice=_(
            "Record the statutory ground per recipient; prefer the per-recipient pseudonym where matching "
            "is not needed."
        ),
    )


def free_text_fields(config: PolicyConfig) -> Finding | None:
    occurrences = [
        f"categories.yaml: {c.id}.{f.name} ({type_label(c.field_sensitivity(f.name))})"
        for c in config.categories
        for f in c.fields
        if _is_free_text(f.description, f.description_en) and c.field_sensitivity(f.name) is Sensitivity.ORDINARY
    ]
    return finding(
        occurrences,
        id="C-free-text",
        title=_("Free-text fields typed ordinary may hold special or criminal data"),
        likelihood="medium",
        impact="medium",
        motivation=_("Notes can mention health or police matters, which then travel as ordinary data."),
        measures=("M03",),
        advice=_("Instruct writers not to record health or criminal data in notes, and sample notes periodically."),
    )


def never_written(config: PolicyConfig) -> Finding | None:
    written = {a.category for a in effective_access(config) if a.operation is Operation.WRITE}
    read = {a.category for a in effective_access(config) if a.operation is Operation.READ}
    return finding(
        [
            _("categories.yaml: category '{category}' is read but no rule lets its source write it", category=c.id)
            for c in config.categories
            if c.id in read and c.id not in written
        ],
        id="C-never-written",
        title=_("A category is shared but never written through the gateway"),
        likelihood="low",
        impact="low",
        motivation=_("Its data enters only at registration, so recipients may read stale or empty values."),
        measures=(),
        advice=_("Add a write rule for its source, or stop sharing the category."),
    )
