"""DPIA part B, lawfulness (sections 11-15), from the configuration's facts."""

from __future__ import annotations

from gateway.dpia.document import Code, Human, Section, Text, para, table, text, to_assess
from gateway.dpia.facts import (
    basis_text,
    by_id,
    granted_fields,
    join_words,
    operation_verb,
    rules_for,
    served_recipients,
    type_label,
)
from gateway.dpia.lang import N_, _, tr
from gateway.policies.model import Operation, PolicyConfig, Sensitivity


def legal_basis(config: PolicyConfig) -> Section:
    rows: list[tuple[Text | str, ...]] = []
    for p in config.purposes:
        rules = rules_for(config, p.id)
        own: list[str | Code] = []
        for i, r in enumerate(rules):
            own += ["; " if i else "", Code(r.id), f": {r.legal_basis.dpv}"]
        rows.append(
            (
                text(p.name, " (", Code(p.id), ")"),
                text(Code(p.legal_basis.dpv)),
                basis_text(p.legal_basis),
                tuple(own) or (_("no rule"),),
            )
        )
    return Section(
        "s11",
        _("11. Legal basis (art. 6)"),
        (
            para(
                _(
                    "Each purpose names its art. 6 basis; each rule names the basis of its own disclosure. A "
                    "covenant is not itself a legal basis."
                )
            ),
            table((_("Purpose"), _("Basis"), _("Text"), _("Rules and their bases")), rows),
        ),
    )


def sensitive(config: PolicyConfig) -> Section:
    categories = by_id(config)[1]
    purposes = {p.id: p for p in config.purposes}
    rows: list[tuple[Text | str, ...]] = []
    for rule in config.rules:
        purpose = purposes[rule.purpose]
        for grant in rule.grants:
            category = categories[grant.category]
            for kind in (Sensitivity.SPECIAL, Sensitivity.CRIMINAL, Sensitivity.NATIONAL_ID):
                fields = [f for f in granted_fields(category, grant) if category.field_sensitivity(f) is kind]
                if not fields:
                    continue
                condition = {
                    Sensitivity.SPECIAL: purpose.art9_condition,
                    Sensitivity.CRIMINAL: purpose.art10_condition,
                    Sensitivity.NATIONAL_ID: None,
                }[kind]
                named = (
                    text(Code(condition.dpv), ": ", basis_text(condition))
                    if condition
                    else text(
                        _("named by the rule (UAVG art. 46 requires a statutory ground):"),
                        " ",
                        basis_text(rule.legal_basis),
                    )
                )
                rows.append(
                    (
                        text(Code(rule.id), " (", ", ".join(operation_verb(o) for o in rule.operations), ")"),
                        text(Code(grant.category), ": ", ", ".join(fields)),
                        type_label(kind),
                        join_words([o.name for o in served_recipients(config, rule)]),
                        named,
                    )
                )
    return Section(
        "s12",
        _("12. Special categories, criminal data and national identification numbers"),
        (
            para(
                _(
                    "The configuration refuses a rule that grants special (art. 9) or criminal (art. 10) data for a "
                    "purpose without an exception; national-id fields are released only where a rule names them. "
                    "Every such grant:"
                )
            ),
            table((_("Rule"), _("Data"), _("Type"), _("Recipients"), _("Exception or basis")), rows),
        ),
    )


def compatibility(config: PolicyConfig) -> Section:
    uses: dict[tuple[str, Operation], list[str]] = {}
    for rule in config.rules:
        for grant in rule.grants:
            for op in rule.operations:
                found = uses.setdefault((grant.category, op), [])
                if rule.purpose not in found:
                    found.append(rule.purpose)

    def purposes(category: str, op: Operation) -> Text:
        return _codes(uses.get((category, op), [])) or (_("none"),)

    rows: list[tuple[Text | str, ...]] = [
        (text(c.name, " (", Code(c.id), ")"), purposes(c.id, Operation.READ), purposes(c.id, Operation.WRITE))
        for c in config.categories
    ]
    return Section(
        "s13",
        _("13. Purpose limitation and compatibility"),
        (
            para(
                _(
                    "For which purposes each category is read and written. Every request states one purpose and "
                    "gets only what that purpose's rules grant (measures M02, M03)."
                )
            ),
            table((_("Category"), _("Read for"), _("Written for")), rows),
            Human(
                "purpose-compatibility",
                to_assess(
                    _("Whether each further use is compatible with the purpose the data was collected for (art. 6(4)).")
                ),
            ),
        ),
    )


def _codes(ids: list[str]) -> Text:
    spans: list[str | Code] = []
    for i, value in enumerate(ids):
        spans += [", " if i else "", Code(value)]
    return tuple(spans)


def necessity(config: PolicyConfig) -> Section:
    categories = by_id(config)[1]
    rows: list[tuple[Text | str, ...]] = []
    for rule in config.rules:
        if Operation.READ not in rule.operations:
            continue
        for grant in rule.grants:
            category = categories[grant.category]
            given = granted_fields(category, grant)
            withheld = [f.name for f in category.fields if f.name not in given]
            rows.append(
                (
                    text(Code(rule.id)),
                    text(Code(grant.category)),
                    _("{given} of {total}", given=len(given), total=len(category.fields)),
                    ", ".join(withheld) or _("none"),
                )
            )
    return Section(
        "s14",
        _("14. Necessity: subsidiarity and proportionality"),
        (
            para(
                _(
                    "Field-level minimisation per read rule: how many of a category's fields each rule releases, "
                    "and which it withholds."
                )
            ),
            table((_("Rule"), _("Category"), _("Fields released"), _("Withheld")), rows),
            Human(
                "necessity",
                to_assess(
                    _(
                        "Why each disclosure is necessary, and why no less intrusive means "
                        "(subsidiarity) or fewer data (proportionality) would do."
                    )
                ),
            ),
        ),
    )


RIGHTS = (
    (N_("Information (art. 13, 14)"), N_("Not done by the gateway: the parties inform participants.")),
    (
        N_("Access (art. 15)"),
        N_(
            "Every disclosure is in the audit log with recipient, purpose, categories, legal basis "
            "and time: the facts for an access report, including the recipients (art. 15(1)(c))."
        ),
    ),
    (
        N_("Rectification (art. 16)"),
        N_(
            "Only the source of a category may write it (M07): rectification happens at the "
            "source and reaches every recipient through the gateway."
        ),
    ),
    (
        N_("Erasure (art. 17)"),
        N_(
            "Retention rules per category (section 10); destruction by crypto-shredding (M12). "
            "Records under a legal claim may be kept (art. 17(3)(e))."
        ),
    ),
    (
        N_("Restriction (art. 18)"),
        N_("A restriction is a change of the rules or a hold on destruction; see the human assessment below."),
    ),
    (
        N_("Objection (art. 21)"),
        N_("Processing rests on art. 6(1)(e); an objection is handled by the controller that holds regie."),
    ),
    (N_("Automated decisions (art. 22)"), N_("None about participants (section 4).")),
)


def rights() -> Section:
    return Section(
        "s15",
        _("15. Data-subject rights"),
        (
            table((_("Right"), _("How it is served")), [(tr(right), tr(how)) for right, how in RIGHTS]),
            Human(
                "rights",
                to_assess(
                    _(
                        "Which party answers which request, within which term, and how joint "
                        "controllers refer requests to each other (art. 26(1))."
                    )
                ),
            ),
        ),
    )


def part_b(config: PolicyConfig) -> Section:
    """Return part B of the DPIA (sections 11-15)."""
    return Section(
        "part-b",
        _("B. Lawfulness of the processing"),
        children=(legal_basis(config), sensitive(config), compatibility(config), necessity(config), rights()),
    )
