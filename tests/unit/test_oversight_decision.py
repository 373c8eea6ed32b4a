"""Oversight and aftercare as policy: `decide_oversight` and `standing` over the shipped LVV
configuration, as truth tables, and a configuration that could reach record contents fails to load."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.policies.compiled import CompiledPolicy, compile_policy, retention_end
from gateway.policies.decision import Decision, Reason
from gateway.policies.loader import ConfigError, ConfigProblem, add_duration, load_config
from gateway.policies.model import OversightAction
from gateway.policies.oversight import OversightRequest, decide_oversight, standing

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config" / "lvv"
AMS = ZoneInfo("Europe/Amsterdam")
IN_FORCE = datetime(2024, 6, 1, 12, 0, tzinfo=AMS).timestamp()
LVV_END = datetime(2025, 1, 1, 0, 0, 0, tzinfo=AMS).timestamp()  # the first second no longer in force
LVV_COVENANTS = ("lvv-amsterdam", "lvv-rotterdam", "lvv-utrecht", "lvv-groningen", "lvv-eindhoven")
AFTER_RETENTION = (
    "audit_review",
    "subject_access_request",
    "evidence_review",
    "legal_hold_administration",
    "notice_acknowledgement",
    "rehearsal_control",
)


@pytest.fixture(scope="module")
def policy() -> CompiledPolicy:
    return compile_policy(load_config(CONFIG_DIR))


def ask(
    policy: CompiledPolicy,
    org: str,
    role: str,
    action: OversightAction,
    now: float,
    covenant: str | None = None,
) -> Decision:
    """Return the gate's decision on one oversight request at POSIX time `now`."""
    return decide_oversight(policy, OversightRequest(org, role, action, covenant), now)


def aftercare_end(policy: CompiledPolicy, activity_id: str, covenant_id: str) -> float:
    """Return the end of an activity's window for a covenant, as the compiled policy holds it."""
    return policy.oversight[activity_id].windows[covenant_id][1]


# -- the window: during the covenant, after its end, until the aftercare ends ----------------------


def test_the_lvv_covenants_end_at_new_year_2025_in_amsterdam(policy: CompiledPolicy) -> None:
    assert {policy.covenants[c].ends_ts for c in LVV_COVENANTS} == {LVV_END}


@pytest.mark.parametrize("activity_id", AFTER_RETENTION)
@pytest.mark.parametrize("covenant_id", LVV_COVENANTS)
def test_aftercare_ends_one_year_after_the_last_retention_period_of_the_covenant(
    policy: CompiledPolicy, activity_id: str, covenant_id: str
) -> None:
    cov = policy.covenants[covenant_id]
    retained = retention_end(policy.config, cov.source, cov.ends_ts)
    expected = add_duration(datetime.fromtimestamp(retained, AMS), "P1Y").timestamp()
    assert aftercare_end(policy, activity_id, covenant_id) == expected


def test_for_the_lvv_covenants_aftercare_ends_on_1_july_2026(policy: CompiledPolicy) -> None:
    # Retention: the longest covenant_end period of the shared categories is P6M; aftercare adds P1Y.
    retained = retention_end(policy.config, policy.covenants["lvv-amsterdam"].source, LVV_END)
    assert retained == datetime(2025, 7, 1, tzinfo=AMS).timestamp()
    assert aftercare_end(policy, "audit_review", "lvv-amsterdam") == datetime(2026, 7, 1, tzinfo=AMS).timestamp()


def test_covenant_administration_has_no_aftercare_so_its_window_closes_at_the_end(policy: CompiledPolicy) -> None:
    assert aftercare_end(policy, "covenant_administration", "lvv-amsterdam") == LVV_END


@pytest.mark.parametrize(
    "moment",
    [
        pytest.param(IN_FORCE, id="during-the-covenant"),
        pytest.param(LVV_END, id="at-the-end"),
        pytest.param(LVV_END + 1, id="one-second-after-the-end"),
        pytest.param(datetime(2026, 6, 30, 23, 59, 59, tzinfo=AMS).timestamp(), id="last-second-of-aftercare"),
    ],
)
def test_a_privacy_officer_of_amsterdam_may_review_the_log_until_the_aftercare_ends(
    policy: CompiledPolicy, moment: float
) -> None:
    assert moment < aftercare_end(policy, "audit_review", "lvv-amsterdam")
    decision = ask(policy, "amsterdam", "privacy_officer", OversightAction.AUDIT_REVIEW, moment)
    assert decision.permitted
    assert decision.reason is Reason.PERMITTED
    assert decision.covenant_ids == ("lvv-amsterdam",)


def test_the_log_review_is_denied_aftercare_ended_from_the_aftercare_end_on(policy: CompiledPolicy) -> None:
    end = aftercare_end(policy, "audit_review", "lvv-amsterdam")
    for moment in (end, end + 1, end + 86400 * 365):
        decision = ask(policy, "amsterdam", "privacy_officer", OversightAction.AUDIT_REVIEW, moment)
        assert not decision.permitted
        assert decision.reason is Reason.AFTERCARE_ENDED
        assert decision.processing_activity_id == policy.oversight["audit_review"].processing_activity_id


def test_before_any_covenant_started_oversight_is_denied_no_covenant_in_force(policy: CompiledPolicy) -> None:
    before = datetime(2019, 3, 31, 12, 0, tzinfo=AMS).timestamp()
    decision = ask(policy, "amsterdam", "privacy_officer", OversightAction.AUDIT_REVIEW, before)
    assert decision.reason is Reason.NO_COVENANT_IN_FORCE


def test_covenant_administration_is_permitted_during_and_denied_right_after_the_end(policy: CompiledPolicy) -> None:
    during = ask(policy, "amsterdam", "jurist", OversightAction.COVENANT_REVOKE, IN_FORCE)
    assert during.permitted
    assert during.rule_ids == ("covenant_administration",)
    for moment in (LVV_END, LVV_END + 1):
        after = ask(policy, "amsterdam", "jurist", OversightAction.COVENANT_REVOKE, moment)
        assert not after.permitted
        assert after.reason is Reason.AFTERCARE_ENDED


# -- who: the role and the organisation ------------------------------------------------------------


@pytest.mark.parametrize("moment", [IN_FORCE, LVV_END + 1])
def test_a_case_manager_has_no_oversight_activity(policy: CompiledPolicy, moment: float) -> None:
    decision = ask(policy, "amsterdam", "case_manager", OversightAction.AUDIT_REVIEW, moment)
    assert not decision.permitted
    assert decision.reason is Reason.NO_OVERSIGHT_ACTIVITY


def test_a_role_the_organisation_does_not_hold_is_not_allowed(policy: CompiledPolicy) -> None:
    # IND has no jurist; ngo-medisch has no counsellor: naming the role does not lend it.
    for org, role, action in (
        ("ind", "jurist", OversightAction.EVIDENCE_VIEW),
        ("ngo-medisch", "counsellor", OversightAction.AUDIT_REVIEW),
    ):
        decision = ask(policy, org, role, action, IN_FORCE)
        assert not decision.permitted
        assert decision.reason is Reason.ROLE_NOT_ALLOWED


def test_an_unknown_organisation_is_denied(policy: CompiledPolicy) -> None:
    decision = ask(policy, "gemeente-nergens", "privacy_officer", OversightAction.AUDIT_REVIEW, IN_FORCE)
    assert not decision.permitted
    assert decision.reason is Reason.UNKNOWN_ORGANISATION


def test_a_privacy_officer_of_a_rijkspartner_may_not_administer_legal_holds(policy: CompiledPolicy) -> None:
    # legal_hold_administration names gemeenten only; a rijkspartner's privacy officer has no activity for it.
    decision = ask(policy, "ind", "privacy_officer", OversightAction.LEGAL_HOLD, IN_FORCE)
    assert decision.reason is Reason.NO_OVERSIGHT_ACTIVITY


def test_a_named_covenant_the_organisation_is_not_party_to_is_denied_and_hides_its_existence(
    policy: CompiledPolicy,
) -> None:
    decision = ask(
        policy, "amsterdam", "jurist", OversightAction.EVIDENCE_ISSUE, IN_FORCE, covenant="lokaal-utrecht-2025"
    )
    assert not decision.permitted
    assert decision.reason is Reason.NOT_A_PARTY
    assert decision.hides_existence


def test_a_named_covenant_of_the_organisation_is_permitted_for_that_covenant_only(policy: CompiledPolicy) -> None:
    decision = ask(policy, "utrecht", "jurist", OversightAction.EVIDENCE_ISSUE, LVV_END + 1, covenant="lvv-utrecht")
    assert decision.permitted
    assert decision.covenant_ids == ("lvv-utrecht",)


# -- what every permit carries -----------------------------------------------------------------------


def served_requests(policy: CompiledPolicy) -> list[tuple[str, str, str, OversightAction]]:
    """Return (activity, organisation, role, action) for every pairing the configuration names."""
    out = []
    for activity in policy.oversight.values():
        for org in policy.organisations.values():
            for role in sorted(activity.roles & set(org.roles)):
                if activity.serves(org, role):
                    out.extend((activity.id, org.id, role, action) for action in sorted(activity.actions))
    return out


def test_each_oversight_action_belongs_to_exactly_one_activity(policy: CompiledPolicy) -> None:
    assert set(policy.oversight_by_action) == set(OversightAction)
    assert all(len(activities) == 1 for activities in policy.oversight_by_action.values())


def test_every_permit_names_its_activity_legal_basis_and_processing_activity(policy: CompiledPolicy) -> None:
    pairings = served_requests(policy)
    assert len(pairings) > 20
    for activity_id, org, role, action in pairings:
        activity = policy.oversight[activity_id]
        decision = ask(policy, org, role, action, IN_FORCE)
        assert decision.permitted, (activity_id, org, role, action, decision.reason)
        assert decision.rule_ids == (activity_id,)
        assert decision.legal_bases == (activity.legal_basis,)
        assert decision.legal_bases[0].startswith("eu-gdpr:")
        assert decision.processing_activity_id == activity.processing_activity_id
        assert decision.purpose == activity_id
        assert decision.grants == ()  # an oversight permit never carries record contents


# -- properties over all inputs -----------------------------------------------------------------------


def _roles(policy: CompiledPolicy) -> list[str]:
    return sorted({r for o in policy.organisations.values() for r in o.roles} | {"intruder", "system"})


POLICY = compile_policy(load_config(CONFIG_DIR))
ORGS = st.sampled_from([*sorted(POLICY.organisations), "gemeente-nergens"])
ROLES = st.sampled_from(_roles(POLICY))
ACTIONS = st.sampled_from(list(OversightAction))
COVENANTS = st.one_of(st.none(), st.sampled_from(sorted(POLICY.covenants)))
MOMENTS = st.floats(
    min_value=datetime(2019, 1, 1, tzinfo=AMS).timestamp(),
    max_value=datetime(2028, 1, 1, tzinfo=AMS).timestamp(),
    allow_nan=False,
)
OVERSIGHT_ROLES = frozenset(r for a in POLICY.oversight.values() for r in a.roles)


@settings(max_examples=400, deadline=None)
@given(org=ORGS, role=ROLES, action=ACTIONS, covenant=COVENANTS, now=MOMENTS)
def test_no_permit_is_ever_given_to_a_role_the_activity_does_not_name(
    org: str, role: str, action: OversightAction, covenant: str | None, now: float
) -> None:
    decision = ask(POLICY, org, role, action, now, covenant)
    if not decision.permitted:
        assert decision.rule_ids == ()
        assert decision.legal_bases == ()
        return
    (activity_id,) = decision.rule_ids
    activity = POLICY.oversight[activity_id]
    assert role in activity.roles
    assert action in activity.actions
    assert activity.serves(POLICY.organisations[org], role)
    assert decision.covenant_ids
    for cov_id in decision.covenant_ids:
        start, until = activity.windows[cov_id]
        assert start <= now < until
        assert org in POLICY.covenants[cov_id].parties
    assert covenant is None or decision.covenant_ids == (covenant,)


@settings(max_examples=300, deadline=None)
@given(org=ORGS, now=MOMENTS)
def test_after_the_end_a_token_may_carry_oversight_roles_only(org: str, now: float) -> None:
    state = standing(POLICY, org, now)
    if state.exchange_in_force:
        assert state.oversight_roles == frozenset(POLICY.organisations[org].roles)
        return
    assert state.oversight_roles <= OVERSIGHT_ROLES
    if org in POLICY.organisations:
        assert state.oversight_roles <= set(POLICY.organisations[org].roles)
    assert (state.aftercare_until is None) == (not state.oversight_roles)
    for role in state.oversight_roles:
        assert state.allows(role)


def test_amsterdams_standing_moves_from_exchange_to_aftercare_to_done(policy: CompiledPolicy) -> None:
    during = standing(policy, "amsterdam", IN_FORCE)
    assert during.exchange_in_force
    assert during.allows("case_manager")

    after = standing(policy, "amsterdam", LVV_END + 1)
    assert not after.exchange_in_force
    # The stuurgroep keeps the monitor until the data is destroyed, for the last results measurement.
    assert after.oversight_roles == {"privacy_officer", "jurist", "steering"}
    assert not after.allows("case_manager")
    monitor_closed = aftercare_end(policy, "steering_monitor", "lvv-amsterdam")
    assert standing(policy, "amsterdam", monitor_closed).oversight_roles == {"privacy_officer", "jurist"}
    assert after.ended_at == LVV_END
    assert after.aftercare_until == aftercare_end(policy, "audit_review", "lvv-amsterdam")

    assert after.aftercare_until is not None
    done = standing(policy, "amsterdam", after.aftercare_until)
    assert done.oversight_roles == frozenset()
    assert not done.allows("privacy_officer")


def test_an_unknown_organisation_stands_nowhere(policy: CompiledPolicy) -> None:
    state = standing(policy, "gemeente-nergens", IN_FORCE)
    assert not state.exchange_in_force
    assert not state.allows("privacy_officer")


# -- a configuration that could reach record contents does not load --------------------------------


@pytest.fixture
def copy_dir(tmp_path: Path) -> Path:
    target = tmp_path / "lvv"
    shutil.copytree(CONFIG_DIR, target)
    return target


def edit_oversight(directory: Path, change: Callable[[list[dict[str, Any]]], None]) -> None:
    """Load oversight.yaml, apply `change` to its entries in place, and write it back."""
    path = directory / "oversight.yaml"
    entries = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(entries)
    path.write_text(yaml.safe_dump(entries, sort_keys=False, allow_unicode=True), encoding="utf-8")


def activity(entries: list[dict[str, Any]], activity_id: str) -> dict[str, Any]:
    """Return the activity with this id."""
    return next(e for e in entries if e["id"] == activity_id)


def problems_of(directory: Path) -> list[ConfigProblem]:
    """Return the problems of a configuration that must fail to load."""
    with pytest.raises(ConfigError) as caught:
        load_config(directory)
    return caught.value.problems


def assert_refused_for_record_contents(problems: list[ConfigProblem], activity_id: str) -> None:
    """Fail unless oversight.yaml's entry for `activity_id` is refused because it would release records."""
    found = [
        p for p in problems if p.file == "oversight.yaml" and activity_id in p.entry and "record contents" in p.message
    ]
    assert found, "\n".join(map(str, problems))


def test_the_shipped_configuration_loads_with_its_eight_activities() -> None:
    config = load_config(CONFIG_DIR)
    assert {a.id for a in config.oversight} == {
        "audit_review",
        "subject_access_request",
        "evidence_review",
        "legal_hold_administration",
        "covenant_administration",
        "notice_acknowledgement",
        "rehearsal_control",
        "steering_monitor",
    }


@pytest.mark.parametrize(
    "key",
    [
        pytest.param({"grants": [{"category": "identity", "fields": "*"}]}, id="grants"),
        pytest.param({"categories": ["identity"]}, id="categories"),
        pytest.param({"fields": ["family_name"]}, id="fields"),
        pytest.param({"operations": ["read"]}, id="operations"),
        pytest.param({"purpose": "lso_case_discussion"}, id="purpose"),
    ],
)
def test_an_activity_with_a_key_that_reaches_records_is_refused(copy_dir: Path, key: dict[str, Any]) -> None:
    edit_oversight(copy_dir, lambda entries: activity(entries, "audit_review").update(key))
    assert_refused_for_record_contents(problems_of(copy_dir), "audit_review")


@pytest.mark.parametrize("action", ["read", "write", "list"])
def test_an_activity_with_an_exchange_action_is_refused(copy_dir: Path, action: str) -> None:
    edit_oversight(copy_dir, lambda entries: activity(entries, "evidence_review").update(actions=[action]))
    assert_refused_for_record_contents(problems_of(copy_dir), "evidence_review")


def test_an_activity_named_after_a_rules_purpose_is_refused(copy_dir: Path) -> None:
    edit_oversight(
        copy_dir, lambda entries: activity(entries, "legal_hold_administration").update(id="legal_procedure")
    )
    assert_refused_for_record_contents(problems_of(copy_dir), "legal_procedure")


def test_an_activity_for_an_unknown_covenant_or_organisation_is_refused(copy_dir: Path) -> None:
    def change(entries: list[dict[str, Any]]) -> None:
        review = activity(entries, "audit_review")
        review["covenants"] = ["lvv-nergens"]
        review["recipient"]["organisations"] = ["gemeente-nergens"]

    edit_oversight(copy_dir, change)
    messages = [p.message for p in problems_of(copy_dir) if p.file == "oversight.yaml"]
    assert any("lvv-nergens" in m for m in messages)
    assert any("gemeente-nergens" in m for m in messages)


def test_an_activity_for_a_role_no_named_organisation_has_is_refused(copy_dir: Path) -> None:
    # rijkspartners and NGOs have no jurist; a notice activity for jurists of those kinds is a typo or worse.
    def change(entries: list[dict[str, Any]]) -> None:
        notices = activity(entries, "notice_acknowledgement")
        notices["recipient"] = {"kinds": ["rijkspartner", "ngo"], "roles": ["jurist"]}

    edit_oversight(copy_dir, change)
    messages = [p.message for p in problems_of(copy_dir) if p.file == "oversight.yaml"]
    assert any("role 'jurist'" in m for m in messages)
