"""DPIA part A, description (sections 1-10), from the configuration's facts."""

from __future__ import annotations

from gateway.dpia.document import Code, Em, Human, Section, Strong, Text, bullets, para, table, text, to_assess
from gateway.dpia.durations import in_words
from gateway.dpia.facts import (
    after_end_under_hold,
    basis_text,
    by_id,
    covenant_period,
    granted_fields,
    join_words,
    mandate_period,
    mandates_of,
    operation_verb,
    party_role,
    retention_for,
    role_label,
    rules_for,
    served_recipients,
    trigger_label,
    type_label,
)
from gateway.dpia.lang import N_, _, tr, written
from gateway.dpia.oversight import oversight_section
from gateway.policies.model import RECORD_KINDS, PolicyConfig, RetentionRule, SharingRule

_RECORD_NAMES = {
    "audit_log": N_("audit log (disclosure log)"),
    "destruction_records": N_("destruction records (vernietigingsverklaringen)"),
    "revocation_reports": N_("revocation reports"),
    "covenant_documents": N_("covenant documents"),
    "mandates": N_("mandate decisions"),
}
_ACTIONS = {"destroy": N_("destroy"), "archive": N_("keep permanently")}


def _codes(ids: list[str] | tuple[str, ...]) -> Text:
    spans: list[str | Code] = []
    for i, value in enumerate(ids):
        if i:
            spans.append(", ")
        spans.append(Code(value))
    return tuple(spans)


def proposal(config: PolicyConfig) -> Section:
    names = {o.id: o.name for o in config.organisations}
    rows: list[tuple[Text | str, ...]] = [
        (
            text(Code(c.id)),
            c.title,
            join_words([names.get(p.organisation, p.organisation) for p in c.parties]),
            ", ".join(c.regions),
            covenant_period(c),
            c.mandate or _("none recorded"),
        )
        for c in config.covenants
    ]
    return Section(
        "s1",
        _("1. The proposal"),
        (
            para(Strong(config.meta.title)),
            para(
                _(
                    "The parties exchange records about participants through a purpose-bound exchange gateway. "
                    "Every request states a purpose (a processing activity of the register) and an acting role; a "
                    "sharing rule in force under a covenant in force must permit exactly that organisation, role, "
                    "purpose and data category, or the gateway refuses. Every decision is logged before any data "
                    "leaves. This document and the processing register are generated from the same configuration "
                    "the gateway enforces."
                )
            ),
            para(Em(written(config.meta.disclaimer, config.meta.disclaimer_en))),
            table((_("Covenant"), _("Title"), _("Parties"), _("Regions"), _("In force"), _("Mandate")), rows),
            Human(
                "proposal-context",
                to_assess(_("The background of the proposal and the decision this DPIA supports.")),
            ),
        ),
    )


def _systems(config: PolicyConfig, category: str) -> str:
    systems = [f"{s.id} ({s.kind.value})" for s in config.sources if category in s.categories]
    return "; " + _("system: {systems}", systems=", ".join(systems)) if systems else ""


def personal_data(config: PolicyConfig) -> Section:
    rows: list[tuple[Text | str, ...]] = []
    for c in config.categories:
        for f in c.fields:
            rows.append(
                (
                    text(c.name, " (", Code(c.id), ")"),
                    text(Code(f.name)),
                    written(f.description, f.description_en),
                    _("participants"),
                    type_label(c.field_sensitivity(f.name)),
                    ", ".join(c.sources) + _systems(config, c.id),
                    c.dpv_category,
                )
            )
    return Section(
        "s2",
        _("2. Personal data"),
        (
            para(_("Every data item the gateway can hold, with its type and its source (bronhouder):")),
            table(
                (_("Category"), _("Item"), _("Description"), _("Data subjects"), _("Type"), _("Source"), "DPV"),
                rows,
            ),
            para(
                _(
                    "The audit log holds, per decision, the organisation, client, acting user and role, the "
                    "purpose, the participant's pseudonym, the categories and fields released or withheld, the "
                    "rules and legal bases, the policy version and the time; never record contents. The acting "
                    "users of the partner systems are therefore data subjects of the audit log."
                )
            ),
            Human(
                "data-subjects",
                to_assess(
                    _(
                        "Refine the categories of data subjects (the configuration names none beyond "
                        "'participants'), e.g. whether they are in a vulnerable position."
                    )
                ),
            ),
        ),
    )


def _grants(config: PolicyConfig, rule: SharingRule) -> Text:
    categories = by_id(config)[1]
    spans: list[str | Code] = []
    for i, grant in enumerate(rule.grants):
        fields = granted_fields(categories[grant.category], grant)
        spans += ["; " if i else "", Code(grant.category), ": ", ", ".join(fields)]
    return tuple(spans) or (_("participants' pseudonyms and regions (listing)"),)


def operations(config: PolicyConfig) -> Section:
    rows: list[tuple[Text | str, ...]] = []
    for rule in config.rules:
        recipients = served_recipients(config, rule)
        rows.append(
            (
                text(Code(rule.purpose)),
                text(Code(rule.id)),
                ", ".join(operation_verb(o) for o in rule.operations),
                _(
                    "{recipients} as {roles}",
                    recipients=join_words([o.name for o in recipients]),
                    roles=", ".join(rule.recipient.roles),
                ),
                _grants(config, rule),
                (
                    _("participant in the covenant's region")
                    if rule.condition == "covenant_region"
                    else _("participant in the covenant's and the recipient's region")
                )
                + (
                    "; " + _("also after the covenant's end for a participant under a legal hold")
                    if after_end_under_hold(rule)
                    else ""
                ),
                _codes(rule.covenants),
            )
        )
    return Section(
        "s3",
        _("3. Processing operations"),
        (
            para(
                _(
                    "Read: a recipient receives the granted fields of a participant's record, with its own "
                    "pseudonym for the participant. Write: the source of a category records or updates it. List: a "
                    "recipient lists the pseudonyms and regions of the participants it may see. The gateway itself "
                    "stores the records encrypted, logs every decision and destroys data as the retention rules say."
                )
            ),
            table(
                (
                    _("Purpose"),
                    _("Rule"),
                    _("Operations"),
                    _("Recipients"),
                    _("Data"),
                    _("Condition"),
                    _("Covenants"),
                ),
                rows,
            ),
        ),
    )


def techniques() -> Section:
    return Section(
        "s4",
        _("4. Techniques and methods"),
        (
            bullets(
                [
                    _(
                        "Automated decisions: the gateway decides automatically on access requests of partner "
                        "systems (deny by default). It takes no decision about a participant with legal or "
                        "similarly significant effect (art. 22)."
                    ),
                    _("Profiling: none. The gateway holds no scoring or profiling logic."),
                    _(
                        "Cryptography: AES-GCM envelope encryption at rest with per-participant data keys; "
                        "per-recipient pseudonyms (HMAC); a hash-chained audit log (RFC 9162 hashing)."
                    ),
                    _("Aggregates: purposes marked aggregate-only serve counts, never a person's record."),
                ]
            ),
            Human(
                "techniques-hosting",
                to_assess(_("Where and by whom the gateway is hosted (cloud or on premises).")),
            ),
        ),
    )


def purposes(config: PolicyConfig) -> Section:
    rows: list[tuple[Text | str, ...]] = []
    for p in config.purposes:
        rules = rules_for(config, p.id)
        ops = sorted({operation_verb(o) for r in rules for o in r.operations})
        rows.append(
            (
                text(p.name, " (", Code(p.id), ")"),
                written(p.description, p.description_en),
                text(Code(p.dpv_purpose)),
                text(Code(p.processing_activity_id)),
                _("aggregate figures only") if p.aggregate_only else ", ".join(ops) or _("no rule"),
                _codes([r.id for r in rules]) or (_("none"),),
            )
        )
    return Section(
        "s5",
        _("5. Purposes"),
        (
            para(
                _("Each purpose is one processing activity of the register; the rules say which operation serves it.")
            ),
            table(
                (
                    _("Purpose"),
                    _("Description"),
                    _("DPV purpose"),
                    _("Processing activity"),
                    _("Operations"),
                    _("Rules"),
                ),
                rows,
            ),
        ),
    )


def parties(config: PolicyConfig) -> Section:
    org_rows: list[tuple[Text | str, ...]] = [
        (text(o.name, " (", Code(o.id), ")"), o.kind.value, o.oin, ", ".join(o.regions), ", ".join(o.roles))
        for o in config.organisations
    ]
    role_rows: list[tuple[Text | str, ...]] = []
    for o in config.organisations:
        cells: list[Text | str] = [o.name]
        for c in config.covenants:
            role = party_role(c, o.id)
            cells.append(role_label(role) if role else "")
        role_rows.append(tuple(cells))
    names = {o.id: o.name for o in config.organisations}
    mandate_rows: list[tuple[Text | str, ...]] = [
        (
            text(Code(m.id)),
            m.reference,
            names.get(m.mandator, m.mandator),
            join_words([names.get(o, o) for o in m.mandataries]),
            _codes(m.covenants),
            _codes(m.rules),
            mandate_period(m),
        )
        for m in mandates_of(config)
    ]
    mandates = (
        (
            para(
                _(
                    "Mandate decisions: the mandataries act in the mandator's name, and the rules a mandate carries "
                    "apply only while it is in force:"
                )
            ),
            table(
                (
                    _("Mandate"),
                    _("Reference"),
                    _("Mandator"),
                    _("Mandataries"),
                    _("Covenants"),
                    _("Rules carried"),
                    _("In force"),
                ),
                mandate_rows,
            ),
        )
        if mandate_rows
        else ()
    )
    return Section(
        "s6",
        _("6. Parties and their roles"),
        (
            table((_("Organisation"), _("Kind"), "OIN", _("Regions"), _("Acting roles")), org_rows),
            para(_("GDPR role of each party per covenant (art. 26 joint controllers; art. 4(7) controllers):")),
            table((_("Organisation"), *(c.id for c in config.covenants)), role_rows),
            *mandates,
            para(
                _(
                    "A covenant records the arrangement between the parties; it is not itself a legal basis. Every "
                    "rule names its own (section 11)."
                )
            ),
        ),
    )


def interests() -> Section:
    return Section(
        "s7",
        _("7. Interests"),
        (
            Human(
                "interests",
                to_assess(
                    _(
                        "The interests of the parties in the processing and the interests of the participants "
                        "(confidentiality, a fair procedure, a lasting solution) that weigh against them."
                    )
                ),
            ),
        ),
    )


def locations(config: PolicyConfig) -> Section:
    regions = sorted({r for o in config.organisations for r in o.regions})
    return Section(
        "s8",
        _("8. Processing locations"),
        (
            para(
                _(
                    "The gateway keeps its encrypted copies and its audit log in one database (SQLite or "
                    "PostgreSQL); each party keeps its own records in its own systems. The regions of the "
                    "configuration ({regions}) are where participants are served, not where data is stored.",
                    regions=", ".join(regions),
                )
            ),
            Human(
                "locations",
                to_assess(_("The hosting location of the gateway and its backups, and of each party.")),
            ),
        ),
    )


FRAMEWORK = (
    N_("GDPR (AVG): art. 5, 6, 9, 10, 13-22, 26, 30, 32, 35"),
    N_("UAVG: art. 22 and 30 (health data), art. 33 (criminal data), art. 46 (national id numbers)"),
    N_("Archiefwet 1995 art. 3 and Archiefbesluit 1995 art. 8 (destruction and the destruction statement)"),
    "Selectielijst gemeenten en intergemeentelijke organen 2020",
    N_("Algemene wet bestuursrecht art. 6:7 (term for objection)"),
)


def framework(config: PolicyConfig) -> Section:
    bases: dict[tuple[str, str], list[str]] = {}
    for p in config.purposes:
        for label, basis in (("", p.legal_basis), (" (art. 9)", p.art9_condition), (" (art. 10)", p.art10_condition)):
            if basis is not None:
                bases.setdefault((basis.dpv, basis_text(basis)), []).append(p.id + label)
    for r in config.rules:
        bases.setdefault((r.legal_basis.dpv, basis_text(r.legal_basis)), []).append(r.id)
    rows: list[tuple[Text | str, ...]] = [
        (text(Code(term)), body, _codes(users)) for (term, body), users in bases.items()
    ]
    extra = ["Wet politiegegevens (Wpg)"] if any(r.legal_basis.dpv.startswith("nl-wpg:") for r in config.rules) else []
    agreements = [f"{c.title}" + (f"; {c.mandate}" if c.mandate else "") for c in config.covenants]
    return Section(
        "s9",
        _("9. Legal and policy framework"),
        (
            bullets([*(tr(f) for f in FRAMEWORK), *extra, *agreements]),
            para(_("Legal bases as the configuration names them, and where each is used:")),
            table((_("Term"), _("Text"), _("Used by")), rows),
        ),
    )


def _retention_cells(rule: RetentionRule | None) -> tuple[Text | str, ...]:
    if rule is None:
        return (text(Strong(_("no retention rule"))), "", "", "", text(Strong(_("missing"))))
    status = text(Em(_("suggestion"))) if rule.suggestion else text(_("law / selection list"))
    period = text(Code(rule.duration), f" ({in_words(rule.duration)})") if rule.duration else text(_("permanently"))
    return (
        period,
        trigger_label(rule.trigger.value),
        tr(_ACTIONS.get(rule.action, rule.action)),
        rule.legal_source,
        status,
    )


def retention(config: PolicyConfig) -> Section:
    used: dict[str, list[str]] = {}
    for rule in config.rules:
        for grant in rule.grants:
            users = used.setdefault(grant.category, [])
            if rule.purpose not in users:
                users.append(rule.purpose)
    rows: list[tuple[Text | str, ...]] = [
        (
            text(c.name, " (", Code(c.id), ")"),
            _codes(used.get(c.id, [])) or (_("none"),),
            *_retention_cells(retention_for(config, c.id)),
        )
        for c in config.categories
    ]
    own: list[tuple[Text | str, ...]] = [
        (tr(_RECORD_NAMES.get(kind, kind)), *_retention_cells(retention_for(config, kind))) for kind in RECORD_KINDS
    ]
    return Section(
        "s10",
        _("10. Retention"),
        (
            para(
                _(
                    "Retention per category of the copies the gateway holds, for every purpose that shares the "
                    "category (the clock starts at the trigger). Rules marked"
                ),
                " ",
                Em(_("suggestion")),
                " ",
                _("are design choices, not law."),
            ),
            table(
                (
                    _("Category"),
                    _("Purposes"),
                    _("Retention"),
                    _("Trigger"),
                    _("Action"),
                    _("Legal source"),
                    _("Status"),
                ),
                rows,
            ),
            para(_("The gateway's own records:")),
            table((_("Record"), _("Retention"), _("Trigger"), _("Action"), _("Legal source"), _("Status")), own),
        ),
    )


def part_a(config: PolicyConfig) -> Section:
    """Return part A of the DPIA (sections 1-10)."""
    return Section(
        "part-a",
        _("A. Description of the processing"),
        children=(
            proposal(config),
            personal_data(config),
            operations(config),
            techniques(),
            purposes(config),
            oversight_section(config),
            parties(config),
            interests(),
            locations(config),
            framework(config),
            retention(config),
        ),
    )
