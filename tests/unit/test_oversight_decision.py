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


def test_a_jurist_of_a_city_without_the_hold_activity_for_its_kind_is_refused(policy: CompiledPolicy) -> None:
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


@pytest.mark.parametrize("activity_id", sorted(CONFIG_ACTIVITIES := ()) or None, indirect=False)
def _unused(activity_id: str) -> None:  # pragma: no cover - placeholder removed below
    raise AssertionError(activity_id)
