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
from gateway.dpia.risk_model import Finding, finding
from gateway.policies.model import GdprRole, PolicyConfig

LONG_COVENANT_YEARS = 5  # suggestion: a covenant running longer than this needs a periodic review


def category_without_retention(config: PolicyConfig) -> Finding | None:
    return finding(
        [
            f"categories.yaml: category '{c.id}' has no rule in retention.yaml"
            for c in config.categories
            if retention_for(config, c.id) is None
        ],
        id="C-no-retention",
        title="A data category has no retention rule",
        likelihood="high",
        impact="medium",
        motivation="Without a retention rule the copies are kept indefinitely (art. 5(1)(e)).",
        measures=("M12",),
        advice="Add a retention rule with its legal source to retention.yaml.",
    )


def purpose_without_rules(config: PolicyConfig) -> Finding | None:
    return finding(
        [
            f"purposes.yaml: purpose '{p.id}' has no sharing rule"
            for p in config.purposes
            if not p.aggregate_only and not rules_for(config, p.id)
        ],
        id="C-purpose-without-rules",
        title="A purpose is declared but no rule serves it",
        likelihood="low",
        impact="low",
        motivation="The register lists an activity the gateway never carries out; requests for it are denied.",
        measures=("M01",),
        advice="Remove the purpose or add the rules the parties agreed on.",
    )


def long_covenant(config: PolicyConfig) -> Finding | None:
    occurrences = []
    for c in config.covenants:
        years = (c.ends_at - c.starts_at).days / 365.25
        if years > LONG_COVENANT_YEARS:
            occurrences.append(f"covenants.yaml: covenant '{c.id}' runs {years:.1f} years")
    return finding(
        occurrences,
        id="C-long-covenant",
        title=f"A covenant has no near end (longer than {LONG_COVENANT_YEARS} years, a suggestion)",
        likelihood="medium",
        impact="low",
        motivation="Long-running sharing outlives the assessment it was based on; parties and tasks change.",
        measures=("M05",),
        advice="Review the covenant and this DPIA periodically, or agree a nearer end date.",
    )


def recipient_outside_covenant(config: PolicyConfig) -> Finding | None:
    _, _, covenants = by_id(config)
    occurrences = []
    parties = {p.organisation for c in config.covenants for p in c.parties}
    for org in config.organisations:
        if org.id not in parties:
            occurrences.append(f"organisations.yaml: organisation '{org.id}' is party to no covenant")
    for rule in config.rules:
        for org in named_recipients(config, rule):
            if org.id in parties and all(
                c in covenants and party_role(covenants[c], org.id) is None for c in rule.covenants
            ):
                occurrences.append(f"rules.yaml: rule '{rule.id}' names {org.name}, party to none of its covenants")
    return finding(
        occurrences,
        id="C-recipient-outside-covenant",
        title="A recipient is outside the covenants",
        likelihood="low",
        impact="medium",
        motivation="The decision never serves it, but the configuration suggests sharing nobody agreed to.",
        measures=("M01",),
        advice="Remove the recipient from the rule, or make it a party to the covenant.",
    )


def rules_under_ended_covenants(config: PolicyConfig) -> Finding | None:
    # "Ended" relative to the newest covenant start: the configuration was written after it. Not the
    # wall clock, so that the documents do not change by themselves.
    if not config.covenants:
        return None
    horizon = max(c.starts_at for c in config.covenants)
    _, _, covenants = by_id(config)
    occurrences = [
        f"rules.yaml: rule '{r.id}'"
        for r in config.rules
        if not holds_after_end(r) and all(c in covenants and covenants[c].ends_at <= horizon for c in r.covenants)
    ]
    return finding(
        occurrences,
        id="C-rules-under-ended-covenants",
        title=f"Rules remain for covenants that ended by {horizon.date().isoformat()} (the newest covenant's start)",
        likelihood="low",
        impact="medium",
        motivation="The gateway denies under them, but copies shared under them must be destroyed or handed over "
        "as the retention rules say.",
        measures=("M05", "M12"),
        advice="Confirm destruction under the retention rules; then remove the rules or keep them for the record.",
    )


def retention_suggestions(config: PolicyConfig) -> Finding | None:
    return finding(
        [f"retention.yaml: rule '{r.id}' ({r.applies_to}) is a suggestion" for r in config.retention if r.suggestion],
        id="C-retention-suggestion",
        title="Retention periods are design suggestions, not law",
        likelihood="medium",
        impact="low",
        motivation="A period the parties have not adopted may be too long or too short for their own obligations.",
        measures=("M12",),
        advice="Have the parties' archivists adopt or replace each suggested period.",
    )


def indicative_legal_bases(config: PolicyConfig) -> Finding | None:
    def indicative(text: str) -> bool:
        return "indicatief" in text.lower() or "indicative" in text.lower()

    occurrences = [
        f"purposes.yaml: purpose '{p.id}'"
        for p in config.purposes
        if any(b is not None and indicative(b.text) for b in (p.legal_basis, p.art9_condition, p.art10_condition))
    ]
    occurrences += [f"rules.yaml: rule '{r.id}'" for r in config.rules if indicative(r.legal_basis.text)]
    return finding(
        occurrences,
        id="C-indicative-legal-basis",
        title="Legal bases are marked indicative, not verified",
        likelihood="medium",
        impact="high",
        motivation="Processing without a verified basis is unlawful (art. 6); the texts say they are starting "
        "points for the jurists.",
        measures=("M16",),
        advice="Have the parties' jurists verify each basis and remove the 'indicatief' mark.",
    )


def wpg_bases(config: PolicyConfig) -> Finding | None:
    return finding(
        [
            f"rules.yaml: rule '{r.id}' names {r.legal_basis.dpv}"
            for r in config.rules
            if r.legal_basis.dpv.startswith("nl-wpg:")
        ],
        id="C-wpg-basis",
        title="Some processing rests on the Wet politiegegevens, outside the GDPR",
        likelihood="medium",
        impact="medium",
        motivation="Police processing under the Wpg belongs in the police's own Wpg register, not only in this "
        "GDPR register; the boundary must be settled.",
        measures=("M09",),
        advice="Let the police's privacy officer register these disclosures under the Wpg.",
    )


def processors(config: PolicyConfig) -> Finding | None:
    return finding(
        [
            f"covenants.yaml: covenant '{c.id}': {p.organisation}"
            for c in config.covenants
            for p in c.parties
            if p.gdpr_role == GdprRole.PROCESSOR
        ],
        id="C-processor",
        title="A party acts as processor",
        likelihood="low",
        impact="medium",
        motivation="A processor needs a processing agreement (art. 28), which the configuration does not record.",
        measures=(),
        advice="Record the processing agreement with each processor.",
    )


def after_end_under_hold(config: PolicyConfig) -> Finding | None:
    return finding(
        [f"rules.yaml: rule '{r.id}' ({r.purpose})" for r in config.rules if holds_after_end(r)],
        id="C-read-after-end-under-hold",
        title="Some data stays readable after the covenant's end for participants under a legal hold",
        likelihood="low",
        impact="medium",
        motivation="Art. 17(3)(e) allows keeping data for legal claims, but a hold left open keeps the data "
        "readable beyond its purpose.",
        measures=("M01", "M09"),
        advice="Record the end of every procedure promptly so that its hold is lifted; review open holds.",
    )


def open_mandates(config: PolicyConfig) -> Finding | None:
    return finding(
        [f"mandates.yaml: mandate '{m.id}' ({m.reference})" for m in mandates_of(config) if m.valid_until is None],
        id="C-open-mandate",
        title="A mandate runs until it is withdrawn",
        likelihood="medium",
        impact="low",
        motivation="Its rules stop with the covenant, but the mandate itself stays in force until someone "
        "records its withdrawal.",
        measures=("M05",),
        advice="Record the withdrawal of each mandate when its covenant ends.",
    )
