"""The processing register (GDPR art. 30(1)) as data, in the shape of the Logboek Dataverwerkingen model.

One entry per processing activity (a purpose of the configuration), with its version id and each art.
30(1) field (a)-(g) as an object holding a readable `summary` and the structured facts in DPV terms.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from gateway.dpia.durations import in_words
from gateway.dpia.facts import (
    ROLE_PLURAL,
    basis_text,
    by_id,
    categories_of,
    covenant_period,
    covenants_of,
    join_words,
    operation_verb,
    party_role,
    retention_for,
    retention_phrase,
    role_label,
    rules_for,
    served_recipients,
    strongest_type,
    type_label,
)
from gateway.dpia.lang import N_, _, current, tr, written
from gateway.dpia.measures import MEASURES
from gateway.dpia.oversight import oversight_entry
from gateway.dpia.versions import activity_version, versioned_uri
from gateway.dpia.vocab import (
    DATA_SUBJECT,
    DATA_SUBJECT_NAME,
    DATA_TYPE,
    LEGAL_BASIS_CLASS,
    LEGAL_ROLE,
    PREFIXES,
    PROCESSING,
    REMOVE,
)
from gateway.policies.loader import policy_version
from gateway.policies.model import (
    RECORD_KINDS,
    GdprRole,
    LegalBasis,
    Operation,
    PolicyConfig,
    Purpose,
    RetentionRule,
)

ART30 = {
    "a": (N_("name and contact details of the controller, joint controllers and DPO"), ["controllers"]),
    "b": (N_("the purposes of the processing"), ["purpose", "legalBasis"]),
    "c": (N_("categories of data subjects and of personal data"), ["dataSubjects", "personalData"]),
    "d": (N_("categories of recipients"), ["recipients"]),
    "e": (N_("transfers to third countries and their safeguards"), ["thirdCountryTransfers"]),
    "f": (N_("time limits for erasure per category"), ["retention"]),
    "g": (N_("description of the technical and organisational security measures"), ["measures"]),
}


def _lower_first(words: str) -> str:
    """Return `words` with a small first letter, unless it starts an abbreviation (DPIA, AES)."""
    head = words.split(" ", 1)[0]
    return words if head.isupper() else words[:1].lower() + words[1:]


def operation_words(operations: list[str]) -> list[str]:
    """Return operation values (read, write, ...) in the documents' language."""
    return [operation_verb(Operation(o)) for o in operations]


def _basis(basis: LegalBasis, scope: str) -> dict[str, Any]:
    return {
        "term": basis.dpv,
        "dpvClass": list(LEGAL_BASIS_CLASS.get(basis.dpv, ())),
        "text": basis_text(basis),
        "scope": scope,
    }


def _legal_bases(config: PolicyConfig, purpose: Purpose) -> list[dict[str, Any]]:
    out = [_basis(purpose.legal_basis, _("purpose (art. 6)"))]
    if purpose.art9_condition:
        out.append(_basis(purpose.art9_condition, _("art. 9(2) exception")))
    if purpose.art10_condition:
        out.append(_basis(purpose.art10_condition, _("art. 10 basis")))
    out += [_basis(r.legal_basis, _("rule {rule}", rule=r.id)) for r in rules_for(config, purpose.id)]
    return out


def _controllers(config: PolicyConfig, purpose: Purpose) -> dict[str, Any]:
    covenants = covenants_of(config, purpose.id)
    assumed = not covenants
    recipients = {o.id for r in rules_for(config, purpose.id) for o in served_recipients(config, r)}
    names = {o.id: o.name for o in config.organisations}
    rows: dict[tuple[str, GdprRole], dict[str, Any]] = {}
    for covenant in covenants or list(config.covenants):
        for party in covenant.parties:
            joint = party.gdpr_role is GdprRole.JOINT_CONTROLLER
            own = party.gdpr_role is GdprRole.CONTROLLER and (assumed or party.organisation in recipients)
            if joint or own:
                row = rows.setdefault(
                    (party.organisation, party.gdpr_role),
                    {
                        "entity": party.organisation,
                        "name": names.get(party.organisation, party.organisation),
                        "role": role_label(party.gdpr_role),
                        "legalRole": LEGAL_ROLE[party.gdpr_role],
                        "covenants": [],
                    },
                )
                row["covenants"].append(covenant.id)
    grouped: dict[GdprRole, list[str]] = {}
    for (_org, role), row in rows.items():
        grouped.setdefault(role, []).append(f"{row['name']} ({', '.join(row['covenants'])})")
    parts = [f"{tr(ROLE_PLURAL[role])}: " + "; ".join(orgs) for role, orgs in grouped.items()]
    summary = ". ".join(parts) or _("None named")
    if assumed:
        summary = (
            _("No rule names a covenant; the controllers of every covenant are listed (to be confirmed).")
            + " "
            + summary
        )
    summary += ". " + _("Contact (DPO / privacy): {contact}.", contact=config.meta.controller_contact)
    return {"summary": summary, "controllers": list(rows.values()), "dpoContact": config.meta.controller_contact}


def _personal_data(config: PolicyConfig, purpose: Purpose) -> dict[str, Any]:
    categories = by_id(config)[1]
    rules = rules_for(config, purpose.id)
    items: list[dict[str, Any]] = []
    labels: list[str] = []
    for cid, fields in categories_of(config, purpose.id).items():
        category = categories[cid]
        ops = sorted({op.value for r in rules for g in r.grants if g.category == cid for op in r.operations})
        kind = strongest_type(category, fields)
        labels.append(f"{category.name} ({type_label(kind)})")
        items.append(
            {
                "id": cid,
                "name": category.name,
                "dpv": category.dpv_category,
                "type": kind.value,
                "dpvType": DATA_TYPE[kind],
                "fields": [{"name": f, "type": category.field_sensitivity(f).value} for f in fields],
                "operations": ops,
                "sources": list(category.sources),
                "sourceSystems": source_systems(config, cid),
            }
        )
    if labels:
        summary = "; ".join(labels)
    else:
        summary = (
            _("None leaves the gateway for this purpose: aggregate figures only.")
            if purpose.aggregate_only
            else _("None leaves the gateway for this purpose.")
        )
    return {"summary": summary, "categories": items}


def source_systems(config: PolicyConfig, category: str) -> list[dict[str, Any]]:
    """Return where a category's records live: each source system naming it, else the hosted store."""
    systems = [
        {"id": s.id, "name": s.name, "organisation": s.organisation, "kind": s.kind.value}
        for s in config.sources
        if category in s.categories
    ]
    hosted = {"id": "hosted", "name": _("The gateway's encrypted store"), "organisation": None, "kind": "hosted"}
    return systems or [hosted]


def _recipients(config: PolicyConfig, purpose: Purpose) -> dict[str, Any]:
    covenants = by_id(config)[2]
    found: dict[str, dict[str, Any]] = {}
    for rule in rules_for(config, purpose.id):
        for org in served_recipients(config, rule):
            row = found.setdefault(
                org.id,
                {
                    "entity": org.id,
                    "name": org.name,
                    "kind": org.kind.value,
                    "roles": [],
                    "operations": [],
                    "categories": [],
                },
            )
            for cid in rule.covenants:
                role = party_role(covenants[cid], org.id) if cid in covenants else None
                if role is not None:
                    entry = {"covenant": cid, "role": role_label(role), "legalRole": LEGAL_ROLE[role]}
                    if entry not in row["roles"]:
                        row["roles"].append(entry)
            for op in rule.operations:
                if op.value not in row["operations"]:
                    row["operations"].append(op.value)
            for grant in rule.grants:
                if grant.category not in row["categories"]:
                    row["categories"].append(grant.category)
    items = list(found.values())
    summary = "; ".join(f"{r['name']} ({', '.join(operation_words(r['operations']))})" for r in items) or _("None.")
    return {"summary": summary, "recipients": items}


def retention_row(rule: RetentionRule | None, applies_to: str) -> dict[str, Any]:
    """Return one retention fact (a missing rule is stated, not hidden)."""
    if rule is None:
        return {"appliesTo": applies_to, "missing": True, "inWords": _("no retention rule")}
    return {
        "appliesTo": applies_to,
        "retentionPeriod": rule.duration,
        "inWords": in_words(rule.duration),
        "phrase": retention_phrase(rule),
        "trigger": rule.trigger.value,
        "action": rule.action,
        "legalSource": rule.legal_source,
        "suggestion": rule.suggestion,
        "rule": rule.id,
        **({"note": written(rule.note, rule.note_en)} if rule.note else {}),
    }


def _retention(config: PolicyConfig, purpose: Purpose) -> dict[str, Any]:
    rows = [retention_row(retention_for(config, cid), cid) for cid in categories_of(config, purpose.id)]
    parts = []
    for row in rows:
        if row.get("missing"):
            parts.append(row["appliesTo"] + ": " + _("NO RETENTION RULE"))
            continue
        label = " (" + _("suggestion") + ")" if row["suggestion"] else ""
        parts.append(f"{row['appliesTo']}: {row['phrase']}{label}")
    summary = "; ".join(parts) or _("Nothing is kept for this purpose beyond the gateway's own records.")
    return {"summary": summary, "rules": rows}


def _validity(config: PolicyConfig, purpose: Purpose) -> tuple[str | None, str | None]:
    covenants = covenants_of(config, purpose.id)
    if not covenants:
        return None, None
    return (
        min(c.starts_at for c in covenants).isoformat(),
        max(c.ends_at - timedelta(seconds=1) for c in covenants).isoformat(),
    )


def activity_entry(config: PolicyConfig, purpose: Purpose) -> dict[str, Any]:
    """Return the register entry of one processing activity (one version)."""
    version = activity_version(config, purpose)
    rules = rules_for(config, purpose.id)
    ops = list(dict.fromkeys(op for r in rules for op in r.operations))
    processing = list(dict.fromkeys(term for op in ops for term in PROCESSING[op]))
    if any(
        (r := retention_for(config, cid)) is not None and r.action == "destroy"
        for cid in categories_of(config, purpose.id)
    ):
        processing.append(REMOVE)
    valid_from, valid_until = _validity(config, purpose)
    return {
        "id": purpose.processing_activity_id,
        "purposeId": purpose.id,
        "versionId": version,
        "versionUri": versioned_uri(purpose, version),
        "name": purpose.name,
        "description": written(purpose.description, purpose.description_en),
        "validFrom": valid_from,
        "validUntil": valid_until,
        "aggregateOnly": purpose.aggregate_only,
        "controllers": _controllers(config, purpose),
        "purpose": {
            "summary": f"{purpose.name}: {written(purpose.description, purpose.description_en)}",
            "dpv": purpose.dpv_purpose,
        },
        "legalBasis": _legal_bases(config, purpose),
        "dataSubjects": {
            "summary": _("Participants: the persons whose records the parties exchange."),
            "categories": [{**DATA_SUBJECT, "name": tr(DATA_SUBJECT_NAME)}],
        },
        "personalData": _personal_data(config, purpose),
        "recipients": _recipients(config, purpose),
        "thirdCountryTransfers": {
            "summary": _(
                "None: the configuration defines no transfer to a third country or international organisation."
            ),
            "transfers": [],
        },
        "retention": _retention(config, purpose),
        "measures": {
            "summary": _(
                "Technical measures the gateway enforces, each proved by a test: {measures}. Organisational "
                "measures: see the DPIA, part D.",
                measures=join_words([f"{m.id} {_lower_first(tr(m.title))}" for m in MEASURES]),
            ),
            "measures": [m.id for m in MEASURES],
        },
        "operations": [op.value for op in ops],
        "processingOperations": processing,
        "rules": [r.id for r in rules],
        "covenants": [
            {"id": c.id, "title": c.title, "period": covenant_period(c), "mandate": c.mandate}
            for c in covenants_of(config, purpose.id)
        ],
    }


def build_register(config: PolicyConfig) -> dict[str, Any]:
    """Return the whole register of a configuration as JSON-ready data."""
    return {
        "register": {
            "config": config.meta.name,
            "title": config.meta.title,
            "status": config.meta.status,
            "disclaimer": written(config.meta.disclaimer, config.meta.disclaimer_en),
            "policyVersion": policy_version(config),
            "generatedBy": "gateway dpia generate",
            "lang": current(),
            "model": _(
                "Logboek Dataverwerkingen register model: ProcessingActivity with versions (a new id for every "
                "relevant change), legal bases and purposes as DPV terms, retention as ISO-8601 durations, "
                "recipients with their legal role."
            ),
        },
        "prefixes": PREFIXES,
        "art30Fields": {letter: {"field": tr(field), "keys": keys} for letter, (field, keys) in ART30.items()},
        "entities": [
            {"id": o.id, "oin": o.oin, "name": o.name, "kind": o.kind.value, "type": "Organisation"}
            for o in config.organisations
        ],
        "processingActivities": [activity_entry(config, p) for p in config.purposes]
        + [
            oversight_entry(config, a, retention_row(retention_for(config, "audit_log"), "audit_log"))
            for a in config.oversight
        ],
        "measures": [
            {
                "id": m.id,
                "measureType": "dpv:TechnicalMeasure",
                "measure": tr(m.title),
                "description": tr(m.description),
                "provedBy": list(m.tests),
            }
            for m in MEASURES
        ],
        "gatewayRecords": [retention_row(retention_for(config, kind), kind) for kind in RECORD_KINDS],
    }
