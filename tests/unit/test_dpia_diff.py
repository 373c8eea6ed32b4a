"""`gateway dpia diff` in words a privacy officer reads: one sentence per change."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from gateway.dpia.diff import explain
from gateway.policies.loader import load_config
from gateway.policies.model import CovenantParty, GdprRole, Grant, Organisation, PolicyConfig, Recipient, SharingRule

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config" / "lvv"


@pytest.fixture(scope="module")
def shipped() -> PolicyConfig:
    return load_config(CONFIG_DIR)


def replace_rule(config: PolicyConfig, rule_id: str, **update: object) -> PolicyConfig:
    rules = tuple(r.model_copy(update=update) if r.id == rule_id else r for r in config.rules)
    return config.model_copy(update={"rules": rules})


def test_an_unchanged_configuration_has_nothing_to_explain(shipped: PolicyConfig) -> None:
    assert explain(shipped, shipped) == []


def test_a_new_read_of_medical_data_names_the_recipient_the_data_and_the_purpose(shipped: PolicyConfig) -> None:
    rule = SharingRule(
        id="medical-dtv-read",
        description="synthetic",
        purpose="medical_advice",
        covenants=("lvv-amsterdam",),
        recipient=Recipient(organisations=("dtv",), roles=("return_officer",)),
        grants=(Grant(category="medical", fields=("bma_advice",)),),
        legal_basis=shipped.rules[0].legal_basis,
    )
    changed = shipped.model_copy(update={"rules": (*shipped.rules, rule)})
    assert explain(shipped, changed) == [
        "Dienst Terugkeer en Vertrek (DT&V) may now read medical data ('Medische gegevens', special (art. 9)) "
        "(bma_advice) for purpose 'Medisch advies' (medical_advice) under covenant lvv-amsterdam."
    ]


def test_a_widened_grant_to_all_cities_is_one_sentence(shipped: PolicyConfig) -> None:
    medical_all = (Grant(category="medical", fields="*"),)
    assert explain(shipped, replace_rule(shipped, "medical-city-read", grants=medical_all)) == [
        "Gemeente Amsterdam, Gemeente Rotterdam, Gemeente Utrecht, Gemeente Groningen and Gemeente Eindhoven may now "
        "also read condition_summary of medical data ('Medische gegevens', special (art. 9)) for purpose "
        "'Medisch advies' (medical_advice) under covenants lvv-amsterdam, lvv-rotterdam, lvv-utrecht, lvv-groningen, "
        "lvv-eindhoven."
    ]


def test_a_withdrawn_rule_says_who_may_no_longer_do_what_under_which_covenants(shipped: PolicyConfig) -> None:
    changed = shipped.model_copy(update={"rules": tuple(r for r in shipped.rules if r.id != "legal-aid-ngo-read")})
    sentences = explain(shipped, changed)
    assert len(sentences) == 3  # identity, immigration_procedure and case_plan; the local rule still gives them
    assert (
        "Stichting Voorbeeld Rechtshulp (fictief) may no longer read immigration_procedure data "
        "('Vreemdelingrechtelijke procedure') for purpose 'Juridische ondersteuning' (legal_aid) under covenants "
        "lvv-amsterdam, lvv-rotterdam, lvv-utrecht, lvv-groningen, lvv-eindhoven." in sentences
    )


def test_shortened_retention_is_named_with_both_periods(shipped: PolicyConfig) -> None:
    retention = tuple(
        r.model_copy(update={"duration": "P1M"}) if r.applies_to == "counselling_notes" else r
        for r in shipped.retention
    )
    assert explain(shipped, shipped.model_copy(update={"retention": retention})) == [
        "Retention of Begeleidingsnotities (counselling_notes) shortened from P3M (3 months) to P1M (1 month)."
    ]


def test_a_new_party_and_its_access_are_named(shipped: PolicyConfig) -> None:
    newcomer = Organisation(
        id="ngo-nieuw",
        name="Stichting Nieuw (fictief)",
        kind="ngo",
        oin="00000099000000000098",
        regions=("utrecht",),
        roles=("counsellor",),
    )
    local = shipped.covenants[-1]
    joined = local.model_copy(
        update={"parties": (*local.parties, CovenantParty(organisation="ngo-nieuw", gdpr_role=GdprRole.CONTROLLER))}
    )
    changed = shipped.model_copy(
        update={"organisations": (*shipped.organisations, newcomer), "covenants": (*shipped.covenants[:-1], joined)}
    )
    changed = replace_rule(
        changed,
        "local-shelter-ngo-list",
        recipient=Recipient(organisations=("ngo-opvang-utrecht", "ngo-nieuw"), roles=("counsellor",)),
    )
    assert explain(shipped, changed) == [
        "New organisation: Stichting Nieuw (fictief) (ngo, regions utrecht).",
        "Stichting Nieuw (fictief) joins covenant lokaal-utrecht-2025 as controller.",
        "Stichting Nieuw (fictief) may now list participants for purpose 'Opvang en begeleiding' "
        "(shelter_counselling) under covenant lokaal-utrecht-2025.",
    ]


def test_a_moved_covenant_end_is_named_with_both_moments(shipped: PolicyConfig) -> None:
    local = shipped.covenants[-1]
    longer = local.model_copy(update={"valid_until": datetime(2026, 6, 30, 23, 59, 59)})
    changed = shipped.model_copy(update={"covenants": (*shipped.covenants[:-1], longer)})
    assert explain(shipped, changed) == [
        "Covenant lokaal-utrecht-2025 now ends later: in force until 2026-06-30 23:59:59 Europe/Amsterdam "
        "(was 2025-12-31 23:59:59 Europe/Amsterdam)."
    ]


def test_a_changed_role_and_legal_basis_of_a_rule_are_named(shipped: PolicyConfig) -> None:
    basis = shipped.rules[0].legal_basis.model_copy(update={"dpv": "eu-gdpr:A6-1-c"})
    changed = replace_rule(shipped, "lso-city-list", legal_basis=basis)
    changed = replace_rule(
        changed, "lso-city-read", recipient=Recipient(kinds=("gemeente",), roles=("case_manager", "intake_officer"))
    )
    sentences = explain(shipped, changed)
    assert sentences[0] == "Rule lso-city-read now serves the roles case_manager, intake_officer (was case_manager)."
    assert sentences[1].startswith("Rule lso-city-list now rests on eu-gdpr:A6-1-c (")
    assert len(sentences) == 2
