"""The risk table names what the configuration itself reveals."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.dpia.lang import speaking
from gateway.dpia.risks import Finding, findings, level
from gateway.policies.loader import load_config
from gateway.policies.model import (
    Covenant,
    GdprRole,
    Grant,
    LegalBasis,
    Operation,
    Organisation,
    PolicyConfig,
    Recipient,
    SharingRule,
)

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config" / "lvv"
BASIS = LegalBasis(dpv="eu-gdpr:A6-1-e", text="AVG art. 6(1)(e), a synthetic test basis")


@pytest.fixture(scope="module")
def shipped() -> PolicyConfig:
    return load_config(CONFIG_DIR)


def found(config: PolicyConfig) -> dict[str, Finding]:
    return {f.id: f for f in findings(config)}


def add_rule(config: PolicyConfig, **fields: object) -> PolicyConfig:
    rule = SharingRule.model_validate(
        {"id": "test-rule", "description": "synthetic", "legal_basis": BASIS, "covenants": ("lvv-amsterdam",), **fields}
    )
    return config.model_copy(update={"rules": (*config.rules, rule)})


def test_the_shipped_config_shows_health_data_going_to_the_medical_ngo(shipped: PolicyConfig) -> None:
    risk = found(shipped)["C-special-to-ngo"]
    assert risk.level == "high"
    assert risk.title == "Bijzondere persoonsgegevens (art. 9) worden aan een ngo verstrekt"
    assert any("medical-ngo-read" in o and "Medisch Steunpunt" in o for o in risk.occurrences)


def test_the_shipped_config_shows_released_national_ids_and_the_police_basis(shipped: PolicyConfig) -> None:
    risks = found(shipped)
    assert any("lso-ind-read" in o and "v_number" in o for o in risks["C-national-id-released"].occurrences)
    assert risks["C-wpg-basis"].occurrences == ("rules.yaml: deelregel 'screening-avim-write' noemt nl-wpg:art-20",)
    assert any("lso-city-read" in o and "screening" in o for o in risks["C-sensitive-beyond-source"].occurrences)


def test_criminal_data_given_to_an_ngo_is_a_high_risk(shipped: PolicyConfig) -> None:
    config = add_rule(
        shipped,
        purpose="lso_case_discussion",
        recipient=Recipient(organisations=("ngo-rechtshulp",), roles=("legal_aid_worker",)),
        grants=(Grant(category="screening", fields=("signals",)),),
    )
    risk = found(config)["C-criminal-to-ngo"]
    assert risk.level == "high"
    assert risk.occurrences == (
        "rules.yaml: deelregel 'test-rule': screening.{signals} aan Stichting Voorbeeld Rechtshulp (fictief)",
    )


def test_a_category_without_a_retention_rule_is_named(shipped: PolicyConfig) -> None:
    config = shipped.model_copy(update={"retention": tuple(r for r in shipped.retention if r.applies_to != "outflow")})
    assert found(config)["C-no-retention"].occurrences == (
        "categories.yaml: categorie 'outflow' heeft geen bewaarregel in retention.yaml",
    )
    assert "C-no-retention" not in found(shipped)


def test_a_purpose_no_rule_serves_is_named_but_aggregate_purposes_are_not(shipped: PolicyConfig) -> None:
    config = shipped.model_copy(update={"rules": tuple(r for r in shipped.rules if r.purpose != "legal_aid")})
    assert found(config)["C-purpose-without-rules"].occurrences == (
        "purposes.yaml: doel 'legal_aid' heeft geen deelregel",
    )
    assert "C-purpose-without-rules" not in found(shipped)


def test_a_covenant_without_a_near_end_is_named(shipped: PolicyConfig) -> None:
    forever = shipped.covenants[-1].model_copy(
        update={"valid_until": shipped.covenants[-1].valid_until.replace(year=2099)}
    )
    config = shipped.model_copy(update={"covenants": (*shipped.covenants[:-1], forever)})
    assert any("lokaal-utrecht-2025" in o for o in found(config)["C-long-covenant"].occurrences)


def test_a_recipient_outside_every_covenant_is_named(shipped: PolicyConfig) -> None:
    stranger = Organisation(
        id="ngo-stranger",
        name="Stichting Vreemd (fictief)",
        kind="ngo",
        oin="00000099000000000099",
        regions=("amsterdam",),
        roles=("counsellor",),
    )
    config = add_rule(
        shipped.model_copy(update={"organisations": (*shipped.organisations, stranger)}),
        purpose="shelter_counselling",
        operations=(Operation.READ,),
        recipient=Recipient(kinds=("ngo",), roles=("counsellor",)),
        grants=(Grant(category="contact", fields=("phone",)),),
    )
    occurrences = found(config)["C-recipient-outside-covenant"].occurrences
    assert "organisations.yaml: organisatie 'ngo-stranger' is bij geen enkel convenant partij" in occurrences
    assert "C-recipient-outside-covenant" not in found(shipped)


def test_rules_under_ended_covenants_are_named_relative_to_the_newest_covenant(shipped: PolicyConfig) -> None:
    risk = found(shipped)["C-rules-under-ended-covenants"]
    assert "rules.yaml: deelregel 'lso-city-read'" in risk.occurrences
    assert not any("local-" in o for o in risk.occurrences)
    only_city_covenants = shipped.model_copy(
        update={"covenants": tuple(c for c in shipped.covenants if c.id.startswith("lvv-"))}
    )
    assert "C-rules-under-ended-covenants" not in found(only_city_covenants)


def test_a_processor_party_needs_an_agreement(shipped: PolicyConfig) -> None:
    covenant: Covenant = shipped.covenants[0]
    parties = tuple(
        p.model_copy(update={"gdpr_role": GdprRole.PROCESSOR}) if p.organisation == "ngo-opvang-amsterdam" else p
        for p in covenant.parties
    )
    config = shipped.model_copy(
        update={"covenants": (covenant.model_copy(update={"parties": parties}), *shipped.covenants[1:])}
    )
    assert found(config)["C-processor"].occurrences == (
        "covenants.yaml: convenant 'lvv-amsterdam': ngo-opvang-amsterdam",
    )


@pytest.mark.parametrize(
    ("likelihood", "impact", "expected"),
    [
        ("low", "low", "low"),
        ("low", "medium", "low"),
        ("medium", "medium", "medium"),
        ("low", "high", "medium"),
        ("medium", "high", "high"),
        ("high", "high", "high"),
    ],
)
def test_the_level_follows_from_likelihood_and_impact(likelihood: str, impact: str, expected: str) -> None:
    assert level(likelihood, impact) == expected


def test_the_risks_are_listed_most_severe_first(shipped: PolicyConfig) -> None:
    order = ["high", "medium", "low"]
    levels = [order.index(f.level) for f in findings(shipped)]
    assert levels == sorted(levels)


def test_an_english_rendition_names_the_same_risk_in_english(shipped: PolicyConfig) -> None:
    with speaking("en"):
        risk = found(shipped)["C-wpg-basis"]
    assert risk.occurrences == ("rules.yaml: rule 'screening-avim-write' names nl-wpg:art-20",)
    assert risk.title == "Some processing rests on the Wet politiegegevens, outside the GDPR"


def test_a_free_text_field_is_found_by_its_dutch_description(shipped: PolicyConfig) -> None:
    assert found(shipped)["C-free-text"].occurrences == ("categories.yaml: counselling_notes.notes (gewoon)",)
