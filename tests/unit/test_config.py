"""The shipped LVV configuration: it loads, it is versioned, it fails loudly, and it keeps its promises."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from gateway.policies.compiled import CompiledPolicy, CompiledRule, compile_policy
from gateway.policies.decision import AccessRequest, Decision, Reason, decide
from gateway.policies.loader import ConfigError, ConfigProblem, load_config, policy_version
from gateway.policies.model import Operation, OrganisationKind, PolicyConfig, Sensitivity

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config" / "lvv"
CITY_COVENANTS = ("lvv-amsterdam", "lvv-rotterdam", "lvv-utrecht", "lvv-groningen", "lvv-eindhoven")
AMSTERDAM = ZoneInfo("Europe/Amsterdam")
MID_2024 = datetime(2024, 6, 1, 12, 0, tzinfo=AMSTERDAM).timestamp()
NEW_YEAR_2025 = datetime(2025, 1, 1, 0, 0, 0, tzinfo=AMSTERDAM).timestamp()


@pytest.fixture(scope="module")
def shipped() -> PolicyConfig:
    return load_config(CONFIG_DIR)


@pytest.fixture(scope="module")
def policy(shipped: PolicyConfig) -> CompiledPolicy:
    return compile_policy(shipped)


@pytest.fixture
def copy_dir(tmp_path: Path) -> Path:
    target = tmp_path / "lvv"
    shutil.copytree(CONFIG_DIR, target)
    return target


def edit(directory: Path, filename: str, change: Callable[[list[dict[str, Any]]], None]) -> None:
    """Load a list file, apply `change` to its entries in place, and write it back."""
    path = directory / filename
    entries = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(entries)
    path.write_text(yaml.safe_dump(entries, sort_keys=False, allow_unicode=True), encoding="utf-8")


def entry(entries: list[dict[str, Any]], entry_id: str) -> dict[str, Any]:
    """Return the entry with this id."""
    return next(e for e in entries if e["id"] == entry_id)


def problems_of(directory: Path) -> list[ConfigProblem]:
    """Return the problems of a configuration that must fail to load."""
    with pytest.raises(ConfigError) as caught:
        load_config(directory)
    return caught.value.problems


def assert_reported(problems: list[ConfigProblem], file: str, entry_id: str | None, fragment: str) -> None:
    """Fail unless one problem names this file and entry (None: the file as a whole) and says `fragment`."""

    def names_entry(problem: ConfigProblem) -> bool:
        return problem.entry == "" if entry_id is None else problem.entry.endswith(f"'{entry_id}'")

    found = any(p.file == file and names_entry(p) and fragment in p.message for p in problems)
    assert found, f"no problem {file}: {entry_id}: ...{fragment}... in:\n" + "\n".join(map(str, problems))


def read(policy: CompiledPolicy, org: str, role: str, purpose: str, region: str, now: float) -> Decision:
    """Return the decision on a read of a participant in `region` at POSIX time `now`."""
    return decide(policy, AccessRequest(org, role, purpose, Operation.READ, region), now)


def compiled_rule(policy: CompiledPolicy, rule_id: str) -> CompiledRule:
    """Return the compiled rule with this id."""
    return next(r for group in policy.rules_by_purpose_op.values() for r in group if r.id == rule_id)


# --- the shipped configuration ------------------------------------------------------------------


def test_the_shipped_config_loads_with_every_expected_part(shipped: PolicyConfig) -> None:
    assert shipped.meta.name == "lvv"
    assert shipped.meta.controller_contact == "privacy@example.invalid"
    assert {o.id for o in shipped.organisations} >= {"amsterdam", "ind", "dtv", "avim", "ngo-medisch"}
    assert {p.id for p in shipped.purposes} == {
        "intake", "lso_case_discussion", "identity_nationality", "return_support", "shelter_counselling",
        "medical_advice", "police_screening", "legal_aid", "monitoring", "legal_procedure",
    }  # fmt: skip


def test_the_five_city_covenants_end_at_the_first_instant_of_2025_in_amsterdam(shipped: PolicyConfig) -> None:
    covenants = {c.id: c for c in shipped.covenants}
    first_instant_of_2025 = datetime.fromisoformat("2025-01-01T00:00:00+01:00")
    for cov_id in CITY_COVENANTS:
        cov = covenants[cov_id]
        assert cov.valid_until == datetime(2024, 12, 31, 23, 59, 59)
        assert cov.timezone == "Europe/Amsterdam"
        assert cov.ends_at == first_instant_of_2025
        assert cov.ends_at.utcoffset() == first_instant_of_2025.utcoffset()
        assert cov.regions == (cov_id.removeprefix("lvv-"),)


def test_the_utrecht_successor_starts_when_the_city_covenants_end_and_has_no_rijkspartner(
    shipped: PolicyConfig,
) -> None:
    covenants = {c.id: c for c in shipped.covenants}
    assert set(covenants) == {*CITY_COVENANTS, "lokaal-utrecht-2025"}
    successor = covenants["lokaal-utrecht-2025"]
    assert successor.starts_at == covenants["lvv-utrecht"].ends_at
    assert successor.regions == ("utrecht",)
    kinds = {o.id: o.kind for o in shipped.organisations}
    parties = {p.organisation for p in successor.parties}
    assert parties == {"utrecht", "ngo-opvang-utrecht", "ngo-rechtshulp", "ngo-medisch"}
    assert OrganisationKind.RIJKSPARTNER not in {kinds[p] for p in parties}


def test_no_rule_under_the_successor_covenant_serves_a_rijkspartner_or_grants_screening(
    shipped: PolicyConfig,
) -> None:
    local = [r for r in shipped.rules if "lokaal-utrecht-2025" in r.covenants]
    assert local, "the successor covenant has rules"
    for rule in local:
        assert rule.covenants == ("lokaal-utrecht-2025",), rule.id
        assert OrganisationKind.RIJKSPARTNER not in rule.recipient.kinds, rule.id
        assert not {"ind", "dtv", "avim"} & set(rule.recipient.organisations), rule.id
        assert "screening" not in {g.category for g in rule.grants}, rule.id


# --- policy version ------------------------------------------------------------------------------


def test_the_policy_version_is_the_same_on_every_load(shipped: PolicyConfig) -> None:
    assert policy_version(load_config(CONFIG_DIR)) == policy_version(shipped)


def test_the_policy_version_ignores_comments_and_layout(copy_dir: Path, shipped: PolicyConfig) -> None:
    edit(copy_dir, "rules.yaml", lambda rules: None)  # rewritten without comments, same content

    assert "#" not in (copy_dir / "rules.yaml").read_text(encoding="utf-8")
    assert policy_version(load_config(copy_dir)) == policy_version(shipped)


def test_the_policy_version_changes_when_one_rule_changes(copy_dir: Path, shipped: PolicyConfig) -> None:
    def narrow(rules: list[dict[str, Any]]) -> None:
        entry(rules, "shelter-city-read")["grants"][2]["fields"] = ["phase"]

    edit(copy_dir, "rules.yaml", narrow)

    assert policy_version(load_config(copy_dir)) != policy_version(shipped)


# --- broken variants ----------------------------------------------------------------------------


def test_an_unknown_key_is_reported_with_its_file_and_entry(copy_dir: Path) -> None:
    edit(copy_dir, "organisations.yaml", lambda orgs: entry(orgs, "amsterdam").update(colour="red"))

    assert_reported(problems_of(copy_dir), "organisations.yaml", "amsterdam", "colour")


def test_a_rule_for_an_unknown_purpose_is_reported(copy_dir: Path) -> None:
    edit(copy_dir, "rules.yaml", lambda rules: entry(rules, "intake-city-read").update(purpose="marketing"))

    problems = problems_of(copy_dir)

    assert_reported(problems, "rules.yaml", "intake-city-read", "purpose 'marketing' is not in purposes.yaml")


def test_a_grant_of_an_unknown_category_field_is_reported(copy_dir: Path) -> None:
    def add_field(rules: list[dict[str, Any]]) -> None:
        entry(rules, "legal-aid-ngo-read")["grants"][2]["fields"] = ["phase", "shoe_size"]

    edit(copy_dir, "rules.yaml", add_field)

    problems = problems_of(copy_dir)

    assert_reported(problems, "rules.yaml", "legal-aid-ngo-read", "field 'shoe_size' is not a field of category")


def test_an_ngo_rule_granting_screening_for_a_purpose_without_art10_basis_is_refused(copy_dir: Path) -> None:
    def leak(rules: list[dict[str, Any]]) -> None:
        entry(rules, "shelter-ngo-read")["grants"].append({"category": "screening", "fields": ["signals"]})

    edit(copy_dir, "rules.yaml", leak)

    problems = problems_of(copy_dir)

    assert_reported(problems, "rules.yaml", "shelter-ngo-read", "grants criminal (art. 10) field 'screening.signals'")
    assert_reported(problems, "rules.yaml", "shelter-ngo-read", "'shelter_counselling' names no art. 10 basis")


def test_only_the_city_intake_rules_grant_registration(shipped: PolicyConfig) -> None:
    registering = {r.id for r in shipped.rules if Operation.REGISTER in r.operations}

    assert registering == {"intake-city-write", "local-intake-city-write"}


def test_only_the_city_reads_or_writes_the_intake_decision_for_intake_or_an_objection(shipped: PolicyConfig) -> None:
    granting = {r.id: r for r in shipped.rules if any(g.category == "intake" for g in r.grants)}

    assert set(granting) == {
        "intake-city-read", "intake-city-write", "local-intake-city-read", "local-intake-city-write",
        "legal-procedure-city-read",
    }  # fmt: skip
    for rule in granting.values():
        cities = set(rule.recipient.organisations) <= {"utrecht"} and set(rule.recipient.kinds) <= {
            OrganisationKind.GEMEENTE
        }
        assert cities, rule.id
        assert rule.purpose in {"intake", "legal_procedure"}, rule.id
    assert {c.sources for c in shipped.categories if c.id == "intake"} == {("gemeente",)}
    assert any(r.applies_to == "intake" for r in shipped.retention)


def test_a_register_rule_for_a_legal_procedure_purpose_is_refused(copy_dir: Path) -> None:
    def register_in_procedure(rules: list[dict[str, Any]]) -> None:
        rule = entry(rules, "intake-city-write")
        rule.update(purpose="legal_procedure", operations=["register"])

    edit(copy_dir, "rules.yaml", register_in_procedure)

    assert_reported(problems_of(copy_dir), "rules.yaml", "intake-city-write", "only an intake purpose registers")


def test_a_duplicate_id_is_reported(copy_dir: Path) -> None:
    edit(copy_dir, "purposes.yaml", lambda purposes: purposes.append(dict(entry(purposes, "legal_aid"))))

    assert_reported(problems_of(copy_dir), "purposes.yaml", "legal_aid", "duplicate id")


def test_invalid_yaml_is_reported_with_its_file(copy_dir: Path) -> None:
    (copy_dir / "covenants.yaml").write_text("- id: lvv-amsterdam\n  regions: [amsterdam\n", encoding="utf-8")

    assert_reported(problems_of(copy_dir), "covenants.yaml", None, "not valid YAML")


def test_a_missing_file_is_reported(copy_dir: Path) -> None:
    (copy_dir / "categories.yaml").unlink()

    assert_reported(problems_of(copy_dir), "categories.yaml", None, "file is missing")


def test_a_covenant_ending_before_it_starts_is_reported(copy_dir: Path) -> None:
    def end_early(covenants: list[dict[str, Any]]) -> None:
        entry(covenants, "lvv-groningen")["valid_until"] = "2018-12-31T23:59:59"

    edit(copy_dir, "covenants.yaml", end_early)

    assert_reported(problems_of(copy_dir), "covenants.yaml", "lvv-groningen", "valid_until lies before valid_from")


def test_an_unknown_time_zone_is_reported(copy_dir: Path) -> None:
    edit(
        copy_dir,
        "covenants.yaml",
        lambda covs: entry(covs, "lvv-eindhoven").update(timezone="Europe/Amstrdam"),
    )

    assert_reported(problems_of(copy_dir), "covenants.yaml", "lvv-eindhoven", "unknown time zone 'Europe/Amstrdam'")


def test_errors_in_several_files_are_all_reported_in_one_config_error(copy_dir: Path) -> None:
    edit(copy_dir, "organisations.yaml", lambda orgs: entry(orgs, "dtv").update(oin="12345"))
    edit(copy_dir, "covenants.yaml", lambda covs: entry(covs, "lvv-utrecht").update(timezone="Mars/Olympus"))
    edit(copy_dir, "categories.yaml", lambda cats: entry(cats, "outflow").update(sensitivity="secret"))
    edit(copy_dir, "rules.yaml", lambda rules: entry(rules, "lso-ind-read").update(purpose="marketing"))
    (copy_dir / "meta.yaml").write_text("name: lvv\n", encoding="utf-8")

    problems = problems_of(copy_dir)

    assert_reported(problems, "organisations.yaml", "dtv", "oin")
    assert_reported(problems, "covenants.yaml", "lvv-utrecht", "unknown time zone")
    assert_reported(problems, "categories.yaml", "outflow", "sensitivity")
    assert_reported(problems, "rules.yaml", "lso-ind-read", "purpose 'marketing'")
    assert_reported(problems, "meta.yaml", None, "title")


# --- what the compiled policy grants -----------------------------------------------------------


def test_grants_of_all_fields_never_include_the_v_number(shipped: PolicyConfig, policy: CompiledPolicy) -> None:
    star_grants = 0
    for rule in shipped.rules:
        for grant, out in zip(rule.grants, compiled_rule(policy, rule.id).grants, strict=True):
            if grant.fields != "*":
                continue
            star_grants += 1
            category = policy.categories[grant.category]
            every = {f.name for f in category.fields}
            national_ids = {n for n in every if category.field_sensitivity(n) is Sensitivity.NATIONAL_ID}
            assert not national_ids & set(out.fields), f"{rule.id}: {grant.category}"
            assert set(out.fields) == every - national_ids
    assert star_grants > 0
    identity = next(g for g in compiled_rule(policy, "lso-city-read").grants if g.category == "identity")
    assert "family_name" in identity.fields
    assert "v_number" not in identity.fields


def _ngo_recipients(rule: CompiledRule, policy: CompiledPolicy) -> set[str]:
    """Return the NGOs a rule can serve, by name or by kind."""
    ngos = {o.id for o in policy.organisations.values() if o.kind is OrganisationKind.NGO}
    if OrganisationKind.NGO.value in rule.kinds:
        return ngos
    return ngos & rule.organisations


def test_no_ngo_gets_criminal_or_special_data_except_medical_advice_for_the_medical_ngo(
    policy: CompiledPolicy,
) -> None:
    rules = {r.id: r for group in policy.rules_by_purpose_op.values() for r in group}
    sensitive = {Sensitivity.SPECIAL, Sensitivity.CRIMINAL}
    offences: list[str] = []
    allowed: list[str] = []
    for rule in rules.values():
        ngos = _ngo_recipients(rule, policy)
        if not ngos:
            continue
        for grant in rule.grants:
            category = policy.categories[grant.category]
            for name in grant.fields:
                if category.field_sensitivity(name) not in sensitive:
                    continue
                where = f"{rule.id}: {grant.category}.{name} to {sorted(ngos)}"
                medical_advice = rule.purpose == "medical_advice" and grant.category == "medical"
                (allowed if medical_advice and ngos == {"ngo-medisch"} else offences).append(where)
    assert offences == []
    assert allowed, "the medical NGO does get medical data for medical advice"


# --- the decisions the demo relies on ----------------------------------------------------------


def test_the_same_case_manager_sees_a_cut_down_record_for_shelter_counselling(policy: CompiledPolicy) -> None:
    lso = read(policy, "amsterdam", "case_manager", "lso_case_discussion", "amsterdam", MID_2024)
    shelter = read(policy, "amsterdam", "case_manager", "shelter_counselling", "amsterdam", MID_2024)

    assert lso.permitted
    assert shelter.permitted
    assert set(shelter.fields_by_category["identity"]) == {
        "family_name",
        "given_names",
        "birth_date",
        "language",
    }
    assert set(shelter.fields_by_category["case_plan"]) == {"phase", "next_lso_date"}
    assert set(shelter.fields_by_category["identity"]) < set(lso.fields_by_category["identity"])
    assert "screening" in lso.fields_by_category
    assert "screening" not in shelter.fields_by_category


def test_national_partners_lose_access_at_the_first_second_of_2025_while_utrecht_continues_locally(
    policy: CompiledPolicy,
) -> None:
    last_second = NEW_YEAR_2025 - 1
    assert read(policy, "ind", "ind_officer", "lso_case_discussion", "utrecht", last_second).permitted

    ind = read(policy, "ind", "ind_officer", "lso_case_discussion", "utrecht", NEW_YEAR_2025)
    city = read(policy, "utrecht", "case_manager", "lso_case_discussion", "utrecht", NEW_YEAR_2025)

    assert ind.reason is Reason.NO_COVENANT_IN_FORCE
    assert city.permitted
    assert city.covenant_ids == ("lokaal-utrecht-2025",)
    assert "screening" not in city.fields_by_category
