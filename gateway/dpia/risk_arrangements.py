"""Risks in the arrangements: retention, purposes, covenants, mandates, legal bases, recipients."""

from __future__ import annotations

from gateway.dpia.facts import (
    after_end_under_hold as holds_after_end,
)
from gateway.dpia.facts import (
    by_id,
    mandates_of,
    named_recipients,
    party_role,
    retention_for,
    rules_for,
)
from gateway.dpia.lang import _, current
from gateway.dpia.risk_model import Finding, finding
from gateway.policies.model import GdprRole, PolicyConfig

LONG_COVENANT_YEARS = 5  # suggestion: a covenant running longer than this needs a periodic review


def _decimal(value: float) -> str:
    """Return a number with one decimal, with a decimal comma in Dutch."""
    return f"{value:.1f}" if current() == "en" else f"{value:.1f}".replace(".", ",")


def category_without_retention(config: PolicyConfig) -> Finding | None:
    return finding(
        [
            _("categories.yaml: category '{category}' has no rule in retention.yaml", category=c.id)
            for c in config.categories
            if retention_for(config, c.id) is None
        ],
        id="C-no-retention",
        title=_("A data category has no retention rule"),
        likelihood="high",
        impact="medium",
        motivation=_("Without a retention rule the copies are kept indefinitely (art. 5(1)(e))."),
        measures=("M12",),
        advice=_("Add a retention rule with its legal source to retention.yaml."),
    )


def purpose_without_rules(config: PolicyConfig) -> Finding | None:
    return finding(
        [
            _("purposes.yaml: purpose '{purpose}' has no sharing rule", purpose=p.id)
            for p in config.purposes
            if not p.aggregate_only and not rules_for(config, p.id)
        ],
        id="C-purpose-without-rules",
        title=_("A purpose is declared but no rule serves it"),
        likelihood="low",
        impact="low",
        motivation=_("The register lists an activity the gateway never carries out; requests for it are denied."),
        measures=("M01",),
        advice=_("Remove the purpose or add the rules the parties agreed on."),
    )


def long_covenant(config: PolicyConfig) -> Finding | None:
    occurrences = []
    for c in config.covenants:
        years = (c.ends_at - c.starts_at).days / 365.25
        if years > LONG_COVENANT_YEARS:
            occurrences.append(
                _("covenants.yaml: covenant '{covenant}' runs {years} years", covenant=c.id, years=_decimal(years))
            )
    return finding(
        occurrences,
        id="C-long-covenant",
        title=_("A covenant has no near end (longer than {years} years, a suggestion)", years=LONG_COVENANT_YEARS),
        likelihood="medium",
        impact="low",
        motivation=_("Long-running sharing outlives the assessment it was based on; parties and tasks change."),
        measures=("M05",),
        advice=_("Review the covenant and this DPIA periodically, or agree a nearer end date."),
    )


def recipient_outside_covenant(config: PolicyConfig) -> Finding | None:
    covenants = by_id(config)[2]
    occurrences = []
    parties = {p.organisation for c in config.covenants for p in c.parties}
    for org in config.organisations:
        if org.id not in parties:
            occurrences.append(
                _("organisations.yaml: organisation '{organisation}' is party to no covenant", organisation=org.id)
            )
    for rule in config.rules:
        for org in named_recipients(config, rule):
            if org.id in parties and all(
                c in covenants and party_role(covenants[c], org.id) is None for c in rule.covenants
            ):
                occurrences.append(
                    _(
                        "rules.yaml: rule '{rule}' names {organisation}, party to none of its covenants",
                        rule=rule.id,
                        organisation=org.name,
                    )
                )
    return finding(
        occurrences,
        id="C-recipient-outside-covenant",
        title=_("A recipient is outside the covenants"),
        likelihood="low",
        impact="medium",
        motivation=_("The decision never serves it, but the configuration suggests sharing nobody agreed to."),
        measures=("M01",),
        advice=_("Remove the recipient from the rule, or make it a party to the covenant."),
    )


def rules_under_ended_covenants(config: PolicyConfig) -> Finding | None:
    # "Ended" relative to the newest covenant start: the configuration was written after it. Not the
    # wall clock, so that the documents do not change by themselves.
    if not config.covenants:
        return None
    horizon = max(c.starts_at for c in config.covenants)
    covenants = by_id(config)[2]
    occurrences = [
        _("rules.yaml: rule '{rule}'", rule=r.id)
        for r in config.rules
        if not holds_after_end(r) and all(c in covenants and covenants[c].ends_at <= horizon for c in r.covenants)
    ]
    return finding(
        occurrences,
        id="C-rules-under-ended-covenants",
        title=_(
            "Rules remain for covenants that ended by {date} (the newest covenant's start)",
            date=horizon.date().isoformat(),
        ),
        likelihood="low",
        impact="medium",
        motivation=_(
            "The gateway denies under them, but copies shared under them must be destroyed or handed over "
            "as the retention rules say."
        ),
        measures=("M05", "M12"),
        advice=_("Confirm destruction under the retention rules; then remove the rules or keep them for the record."),
    )


def retention_suggestions(config: PolicyConfig) -> Finding | None:
    return finding(
        [
            _("retention.yaml: rule '{rule}' ({applies_to}) is a suggestion", rule=r.id, applies_to=r.applies_to)
            for r in config.retention
            if r.suggestion
        ],
        id="C-retention-suggestion",
        title=_("Retention periods are design suggestions, not law"),
        likelihood="medium",
        impact="low",
        motivation=_("A period the parties have not adopted may be too long or too short for their own obligations."),
        measures=("M12",),
        advice=_("Have the parties' archivists adopt or replace each suggested period."),
    )


def indicative_legal_bases(config: PolicyConfig) -> Finding | None:
    def indicative(text: str) -> bool:
        return "indicatief" in text.lower() or "indicative" in text.lower()

    occurrences = [
        _("purposes.yaml: purpose '{purpose}'", purpose=p.id)
        for p in config.purposes
        if any(b is not None and indicative(b.text) for b in (p.legal_basis, p.art9_condition, p.art10_condition))
    ]
    occurrences += [_("rules.yaml: rule '{rule}'", rule=r.id) for r in config.rules if indicative(r.legal_basis.text)]
    return finding(
        occurrences,
        id="C-indicative-legal-basis",
        title=_("Legal bases are marked indicative, not verified"),
        likelihood="medium",
        impact="high",
        motivation=_(
            "Processing without a verified basis is unlawful (art. 6); the texts say they are starting "
            "points for the jurists."
        ),
        measures=("M16",),
        advice=_("Have the parties' jurists verify each basis and remove the 'indicatief' mark."),
    )


def wpg_bases(config: PolicyConfig) -> Finding | None:
    return finding(
        [
            _("rules.yaml: rule '{rule}' names {basis}", rule=r.id, basis=r.legal_basis.dpv)
            for r in config.rules
            if r.legal_basis.dpv.startswith("nl-wpg:")
        ],
        id="C-wpg-basis",
        title=_("Some processing rests on the Wet politiegegevens, outside the GDPR"),
        likelihood="medium",
        impact="medium",
        motivation=_(
            "Police processing under the Wpg belongs in the police's own Wpg register, not only in this "
            "GDPR register; the boundary must be settled."
        ),
        measures=("M09",),
        advice=_("Let the police's privacy officer register these disclosures under the Wpg."),
    )


def processors(config: PolicyConfig) -> Finding | None:
    return finding(
        [
            _("covenants.yaml: covenant '{covenant}': {organisation}", covenant=c.id, organisation=p.organisation)
            for c in config.covenants
            for p in c.parties
            if p.gdpr_role == GdprRole.PROCESSOR
        ],
        id="C-processor",
        title=_("A party acts as processor"),
        likelihood="low",
        impact="medium",
        motivation=_("A processor needs a processing agreement (art. 28), which the configuration does not record."),
        measures=(),
        advice=_("Record the processing agreement with each processor."),
    )


def after_end_under_hold(config: PolicyConfig) -> Finding | None:
    return finding(
        [
            _("rules.yaml: rule '{rule}' ({purpose})", rule=r.id, purpose=r.purpose)
            for r in config.rules
            if holds_after_end(r)
        ],
        id="C-read-after-end-under-hold",
        title=_("Some data stays readable after the covenant's end for participants under a legal hold"),
        likelihood="low",
        impact="medium",
        motivation=_(
            "Art. 17(3)(e) allows keeping data for legal claims, but a hold left open keeps the data "
            "readable beyond its purpose."
        ),
        measures=("M01", "M09"),
        advice=_("Record the end of every procedure promptly so that its hold is lifted; review open holds."),
    )


def open_mandates(config: PolicyConfig) -> Finding | None:
    return finding(
        [
            _("mandates.yaml: mandate '{mandate}' ({reference})", mandate=m.id, reference=m.reference)
            for m in mandates_of(config)
            if m.valid_until is None
        ],
        id="C-open-mandate",
        title=_("A mandate runs until it is withdrawn"),
        likelihood="medium",
        impact="low",
        motivation=_(
            "Its rules stop with the covenant, but the mandate itself stays in force until someone "
            "records its withdrawal."
        ),
        measures=("M05",),
        advice=_("Record the withdrawal of each mandate when its covenant ends."),
    )
