"""Lifecycle facts in the decision: revocations, mandate withdrawals and legal holds, as truth tables.

The decision stays a pure function of (effective policy, request, time): the facts are folded into a
new CompiledPolicy by `with_lifecycle`, and the hold is a fact of the request.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.lifecycle.model import CovenantRevocation, LifecycleFacts, MandateWithdrawal
from gateway.policies.compiled import compile_policy
from gateway.policies.decision import AccessRequest, Reason, decide
from gateway.policies.loader import ConfigError, load_config, policy_version
from gateway.policies.model import Operation

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config" / "lvv"
AMS = ZoneInfo("Europe/Amsterdam")
BASE = compile_policy(load_config(CONFIG_DIR))
IN_FORCE = datetime(2024, 11, 15, 10, 0, tzinfo=AMS).timestamp()
AFTER_END = datetime(2025, 3, 1, 10, 0, tzinfo=AMS).timestamp()
READ = Operation.READ


def revoked(covenant_id: str, at: datetime) -> LifecycleFacts:
    fact = CovenantRevocation(covenant_id, at, "test", "REF 1", "amsterdam", "jurist.1", at - timedelta(days=1), 1)
    return LifecycleFacts(version=1, revocations=MappingProxyType({covenant_id: fact}))


def withdrawn(mandate_id: str, at: datetime) -> LifecycleFacts:
    fact = MandateWithdrawal(mandate_id, at, "test", "REF 2", "amsterdam", "jurist.1", at - timedelta(days=1), 2)
    return LifecycleFacts(version=1, withdrawals=MappingProxyType({mandate_id: fact}))


def request(org: str, role: str, purpose: str, region: str = "amsterdam", held: bool = False) -> AccessRequest:
    return AccessRequest(org, role, purpose, READ, region, None, None, under_legal_hold=held)


# --- legal holds: the truth table ---------------------------------------------------------------------


class HoldRow(NamedTuple):
    held: bool
    purpose: str
    role: str
    when: float
    region: str
    expected: Reason


JURIST = ("amsterdam", "jurist")
CASE_MANAGER = ("amsterdam", "case_manager")
HOLD_TABLE = [
    # not held: the rules as they are
    HoldRow(False, "lso_case_discussion", "case_manager", IN_FORCE, "amsterdam", Reason.PERMITTED),
    HoldRow(False, "legal_procedure", "jurist", IN_FORCE, "amsterdam", Reason.PERMITTED),
    HoldRow(False, "legal_procedure", "jurist", AFTER_END, "amsterdam", Reason.NO_COVENANT_IN_FORCE),
    HoldRow(False, "lso_case_discussion", "case_manager", AFTER_END, "amsterdam", Reason.NO_COVENANT_IN_FORCE),
    # held: only the legal procedure, also after the covenant ended (flagged rule)
    HoldRow(True, "lso_case_discussion", "case_manager", IN_FORCE, "amsterdam", Reason.UNDER_LEGAL_HOLD),
    HoldRow(True, "intake", "case_manager", IN_FORCE, "amsterdam", Reason.UNDER_LEGAL_HOLD),
    HoldRow(True, "legal_procedure", "jurist", IN_FORCE, "amsterdam", Reason.PERMITTED),
    HoldRow(True, "legal_procedure", "jurist", AFTER_END, "amsterdam", Reason.PERMITTED),
    HoldRow(True, "lso_case_discussion", "case_manager", AFTER_END, "amsterdam", Reason.NO_COVENANT_IN_FORCE),
    # held, the legal procedure, but not the role it names
    HoldRow(True, "legal_procedure", "case_manager", AFTER_END, "amsterdam", Reason.NO_RULE),
    # held and after the end, but the participant is in another city: still hidden
    HoldRow(True, "legal_procedure", "jurist", AFTER_END, "rotterdam", Reason.OUTSIDE_COVENANT_REGION),
]


@pytest.mark.parametrize("row", HOLD_TABLE, ids=lambda r: f"held={r.held}-{r.purpose}-{r.role}-{r.region}-{r.when}")
def test_a_legal_hold_restricts_access_to_the_legal_procedure_as_the_truth_table_says(row: HoldRow) -> None:
    decision = decide(BASE, request("amsterdam", row.role, row.purpose, row.region, row.held), row.when)
    assert decision.reason is row.expected
    assert decision.permitted == (row.expected is Reason.PERMITTED)


def test_after_the_end_a_held_participant_is_read_under_the_ended_covenant_by_the_flagged_rule_only() -> None:
    decision = decide(BASE, request(*JURIST, "legal_procedure", held=True), AFTER_END)
    assert decision.rule_ids == ("legal-procedure-city-read",)
    assert decision.covenant_ids == ("lvv-amsterdam",)
    assert set(decision.fields_by_category) == {
        "identity",
        "contact",
        "intake",
        "case_plan",
        "immigration_procedure",
        "outflow",
    }


def test_a_legal_procedure_rule_without_the_flag_stops_at_the_covenant_end(tmp_path: Path) -> None:
    copy = _copy_config(tmp_path)
    _edit(copy / "rules.yaml", "legal-procedure-city-read", during_legal_hold_after_end=False)
    policy = compile_policy(load_config(copy))
    decision = decide(policy, request(*JURIST, "legal_procedure", held=True), AFTER_END)
    assert decision.reason is Reason.NO_RULE


def test_the_hold_is_told_only_to_a_caller_a_rule_would_otherwise_serve() -> None:
    """Rotterdam's case manager is not served for an Amsterdam participant: not found, not 'under hold'."""
    decision = decide(BASE, request("rotterdam", "case_manager", "lso_case_discussion", held=True), IN_FORCE)
    assert decision.reason is Reason.OUTSIDE_COVENANT_REGION
    assert decision.hides_existence
    ind = decide(BASE, request("ind", "ind_officer", "lso_case_discussion", held=True), IN_FORCE)
    assert ind.reason is Reason.UNDER_LEGAL_HOLD


def test_a_rijkspartner_is_never_served_for_the_legal_procedure() -> None:
    for when in (IN_FORCE, AFTER_END):
        decision = decide(BASE, request("ind", "ind_officer", "legal_procedure", held=True), when)
        assert not decision.permitted


# --- revocation and mandate withdrawal ----------------------------------------------------------------


def test_a_revocation_ends_the_covenant_at_its_moment_to_the_second() -> None:
    at = datetime(2024, 12, 1, 12, 0, tzinfo=AMS)
    policy = BASE.with_lifecycle(revoked("lvv-amsterdam", at))
    ind = request("ind", "ind_officer", "lso_case_discussion")
    city = request("amsterdam", "case_manager", "lso_case_discussion")
    assert decide(policy, ind, at.timestamp() - 1).permitted
    assert decide(policy, city, at.timestamp() - 1).permitted
    assert decide(policy, city, at.timestamp()).reason is Reason.NO_COVENANT_IN_FORCE
    # IND is still a party elsewhere: for it, an Amsterdam participant is now outside every covenant in force
    assert decide(policy, ind, at.timestamp()).reason is Reason.OUTSIDE_COVENANT_REGION
    # other cities' covenants run on
    assert decide(policy, request("ind", "ind_officer", "lso_case_discussion", "utrecht"), at.timestamp()).permitted


def test_a_revocation_after_the_configured_end_changes_nothing() -> None:
    later = datetime(2025, 6, 1, tzinfo=AMS)
    policy = BASE.with_lifecycle(revoked("lvv-amsterdam", later))
    assert policy.covenants["lvv-amsterdam"].ends_ts == BASE.covenants["lvv-amsterdam"].ends_ts


def test_a_withdrawn_mandate_stops_the_rules_it_carries_under_its_covenant_only() -> None:
    at = datetime(2024, 12, 1, 9, 0, tzinfo=AMS)
    policy = BASE.with_lifecycle(withdrawn("mandaat-lvv-amsterdam", at))
    ams = request("ngo-opvang-amsterdam", "counsellor", "shelter_counselling")
    utr = request("ngo-opvang-utrecht", "counsellor", "shelter_counselling", "utrecht")
    assert decide(policy, ams, at.timestamp() - 1).permitted
    assert decide(policy, ams, at.timestamp()).reason is Reason.NO_MANDATE_IN_FORCE
    assert decide(policy, utr, at.timestamp()).permitted
    city = request("amsterdam", "case_manager", "shelter_counselling")
    assert decide(policy, city, at.timestamp()).permitted


def test_a_rule_a_mandate_carries_does_not_apply_before_the_mandate_is_granted(tmp_path: Path) -> None:
    copy = _copy_config(tmp_path)
    _edit(copy / "mandates.yaml", "mandaat-lvv-amsterdam", valid_from="2024-12-01T00:00:00")
    policy = compile_policy(load_config(copy))
    ams = request("ngo-opvang-amsterdam", "counsellor", "shelter_counselling")
    assert decide(policy, ams, IN_FORCE).reason is Reason.NO_MANDATE_IN_FORCE
    assert decide(policy, ams, datetime(2024, 12, 1, tzinfo=AMS).timestamp()).permitted


def test_the_effective_policy_keeps_the_configurations_version_and_names_the_lifecycle() -> None:
    facts = revoked("lvv-amsterdam", datetime(2024, 12, 1, tzinfo=AMS))
    policy = BASE.with_lifecycle(facts)
    assert policy.version == BASE.version == policy_version(BASE.config)
    assert BASE.lifecycle_version is None
    assert policy.lifecycle_version == f"lifecycle:1:{facts.fingerprint()}"
    assert BASE.covenants["lvv-amsterdam"].ends_ts != policy.covenants["lvv-amsterdam"].ends_ts


moments = st.integers(
    int(datetime(2024, 10, 1, tzinfo=UTC).timestamp()), int(datetime(2025, 3, 1, tzinfo=UTC).timestamp())
).map(float)
orgs = st.sampled_from([("amsterdam", "case_manager"), ("ind", "ind_officer"), ("ngo-opvang-amsterdam", "counsellor")])
purposes = st.sampled_from(["lso_case_discussion", "shelter_counselling", "identity_nationality", "legal_procedure"])


@settings(max_examples=300, deadline=None)
@given(revocation=moments, ts=moments, who=orgs, purpose=purposes, held=st.booleans())
def test_a_revocation_only_ever_takes_access_away(
    revocation: float, ts: float, who: tuple[str, str], purpose: str, held: bool
) -> None:
    policy = BASE.with_lifecycle(revoked("lvv-amsterdam", datetime.fromtimestamp(revocation, UTC)))
    req = request(*who, purpose, held=held)
    after = decide(policy, req, ts)
    before = decide(BASE, req, ts)
    if after.permitted:
        assert before.permitted
        assert set(after.rule_ids) <= set(before.rule_ids) | {"legal-procedure-city-read"}
    if ts >= revocation and not held:
        assert "lvv-amsterdam" not in after.covenant_ids


@settings(max_examples=200, deadline=None)
@given(ts=moments, who=orgs, purpose=purposes)
def test_a_hold_never_widens_access_for_any_purpose_but_the_legal_procedure(
    ts: float, who: tuple[str, str], purpose: str
) -> None:
    held = decide(BASE, request(*who, purpose, held=True), ts)
    if purpose != "legal_procedure":
        assert not held.permitted


# --- configuration checks -----------------------------------------------------------------------------


def _copy_config(tmp_path: Path) -> Path:
    import shutil

    target = tmp_path / "lvv"
    shutil.copytree(CONFIG_DIR, target)
    return target


def _edit(path: Path, entry_id: str, **changes: Any) -> None:
    entries = yaml.safe_load(path.read_text(encoding="utf-8"))
    for entry in entries:
        if entry["id"] == entry_id:
            entry.update(changes)
    path.write_text(yaml.safe_dump(entries, sort_keys=False, allow_unicode=True), encoding="utf-8")


def test_the_after_end_flag_is_refused_on_a_purpose_that_is_not_a_legal_procedure(tmp_path: Path) -> None:
    copy = _copy_config(tmp_path)
    _edit(copy / "rules.yaml", "lso-city-read", during_legal_hold_after_end=True)
    with pytest.raises(ConfigError) as caught:
        load_config(copy)
    assert any("during_legal_hold_after_end" in p.message and "lso-city-read" in p.entry for p in caught.value.problems)


def test_a_mandate_naming_an_unknown_rule_or_a_non_party_is_refused(tmp_path: Path) -> None:
    copy = _copy_config(tmp_path)
    _edit(copy / "mandates.yaml", "mandaat-lvv-amsterdam", rules=["no-such-rule"], mandataries=["ngo-opvang-utrecht"])
    with pytest.raises(ConfigError) as caught:
        load_config(copy)
    messages = [p.message for p in caught.value.problems if p.file == "mandates.yaml"]
    assert any("no-such-rule" in m for m in messages)
    assert any("'ngo-opvang-utrecht' is not a party" in m for m in messages)


def test_a_configuration_without_a_mandates_file_has_no_mandates(tmp_path: Path) -> None:
    copy = _copy_config(tmp_path)
    (copy / "mandates.yaml").unlink()
    config = load_config(copy)
    assert config.mandates == ()
    assert compile_policy(config).rules_by_purpose_op  # still compiles


def test_every_gemeente_has_the_jurist_role_and_no_other_organisation_does() -> None:
    for org in BASE.organisations.values():
        assert ("jurist" in org.roles) == (org.kind.value == "gemeente"), org.id
