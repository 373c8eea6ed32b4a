"""The processing register: every art. 30(1) field for every activity, and versions an audit entry can follow."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gateway.dpia.generate import REGISTER_JSON, VERSIONS, generate
from gateway.dpia.register import ART30, build_register
from gateway.dpia.versions import register_versions, version_for_audit_entry, versions_for
from gateway.policies.loader import load_config, policy_version
from gateway.policies.model import Grant, PolicyConfig, RetentionRule

ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = ROOT / "config" / "lvv"


@pytest.fixture(scope="module")
def shipped() -> PolicyConfig:
    return load_config(CONFIG_DIR)


@pytest.fixture(scope="module")
def register(shipped: PolicyConfig) -> dict[str, Any]:
    return build_register(shipped)


def with_rule_fields(config: PolicyConfig, rule_id: str, category: str, fields: tuple[str, ...] | str) -> PolicyConfig:
    """Return the configuration with one grant of one rule changed."""
    rules = []
    for rule in config.rules:
        if rule.id == rule_id:
            grants = tuple(
                Grant(category=g.category, fields=fields) if g.category == category else g for g in rule.grants
            )
            rule = rule.model_copy(update={"grants": grants})
        rules.append(rule)
    return config.model_copy(update={"rules": tuple(rules)})


def test_every_art30_field_is_present_for_every_activity(shipped: PolicyConfig, register: dict[str, Any]) -> None:
    activities = register["processingActivities"]
    assert {a["purposeId"] for a in activities} == {p.id for p in shipped.purposes} | {a.id for a in shipped.oversight}
    assert {a["purposeId"] for a in activities if a.get("kind") == "oversight"} == {a.id for a in shipped.oversight}
    assert set(register["art30Fields"]) == set("abcdefg") == set(ART30)
    for activity in activities:
        for letter, field in register["art30Fields"].items():
            for key in field["keys"]:
                value = activity[key]
                assert value, f"{activity['purposeId']}: art. 30(1)({letter}) '{key}' is empty"
                if isinstance(value, dict):
                    assert value["summary"].strip(), f"{activity['purposeId']}: ({letter}) '{key}' has no summary"
        assert activity["versionId"]
        assert activity["versionUri"].startswith(activity["id"] + "#")


def test_the_register_uses_dpv_terms_and_iso_durations(register: dict[str, Any]) -> None:
    medical = next(a for a in register["processingActivities"] if a["purposeId"] == "medical_advice")
    assert {"eu-gdpr:A6-1-e", "eu-gdpr:A9-2-h"} <= {b["term"] for b in medical["legalBasis"]}
    assert "dpv:PublicInterest" in medical["legalBasis"][0]["dpvClass"]
    types = {c["id"]: c["dpvType"] for c in medical["personalData"]["categories"]}
    assert types["medical"] == "dpv:SpecialCategoryPersonalData"
    roles = {r["legalRole"] for rec in medical["recipients"]["recipients"] for r in rec["roles"]}
    assert roles == {"dpv:JointDataControllers", "dpv:DataController"}
    retention = {r["appliesTo"]: r for r in medical["retention"]["rules"]}
    assert retention["medical"]["retentionPeriod"] == "P0D"
    assert retention["medical"]["suggestion"] is True


def test_a_rule_change_gives_a_new_version_to_its_own_activity_only(shipped: PolicyConfig) -> None:
    changed = with_rule_fields(shipped, "medical-city-read", "medical", "*")
    before, after = register_versions(shipped), register_versions(changed)
    moved = {activity for activity in before if before[activity] != after[activity]}
    assert moved == {"urn:nl:lvv-gateway:activity:medical_advice"}


def test_a_retention_change_gives_a_new_version_to_every_activity_sharing_the_category(
    shipped: PolicyConfig,
) -> None:
    retention = tuple(
        r.model_copy(update={"duration": "P1M"}) if r.applies_to == "counselling_notes" else r
        for r in shipped.retention
    )
    changed = shipped.model_copy(update={"retention": retention})
    before, after = register_versions(shipped), register_versions(changed)
    moved = {activity.rsplit(":", 1)[1] for activity in before if before[activity] != after[activity]}
    assert moved == {"shelter_counselling"}


def test_the_version_ignores_facts_that_do_not_define_the_activity(shipped: PolicyConfig) -> None:
    extra = RetentionRule.model_validate(
        {"id": "x", "applies_to": "mandates", "trigger": "recorded", "action": "archive", "legal_source": "Archiefwet"}
    )
    changed = shipped.model_copy(update={"retention": (*(r for r in shipped.retention if r.id != "mandates"), extra)})
    assert policy_version(changed) != policy_version(shipped)
    assert register_versions(changed) == register_versions(shipped)


def test_every_policy_version_ever_generated_still_maps_to_its_activity_versions(
    shipped: PolicyConfig, tmp_path: Path
) -> None:
    changed = with_rule_fields(shipped, "medical-city-read", "medical", "*")
    generate(shipped, tmp_path)
    generate(changed, tmp_path)
    index = json.loads((tmp_path / "lvv" / VERSIONS).read_text())
    medical = "urn:nl:lvv-gateway:activity:medical_advice"
    old, new = policy_version(shipped), policy_version(changed)
    assert list(index["policyVersions"]) == [old, new]
    assert versions_for(index, old) == register_versions(shipped)
    assert version_for_audit_entry(index, new, medical) == register_versions(changed)[medical]
    assert version_for_audit_entry(index, old, medical) != version_for_audit_entry(index, new, medical)
    assert version_for_audit_entry(index, "sha256:unknown", medical) is None
    assert index["activityVersions"][register_versions(shipped)[medical]]["purpose"] == "medical_advice"
    current = json.loads((tmp_path / "lvv" / REGISTER_JSON).read_text())
    assert current["register"]["policyVersion"] == new
