"""Which roles a token may carry, by the organisation's covenant standing on the policy clock: a truth
table over organisations, moments, registered roles and the scope asked (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from gateway.auth.errors import OAuthError
from gateway.auth.standing import granted_roles, token_standing
from gateway.policies.compiled import CompiledPolicy, compile_policy
from gateway.policies.loader import load_config
from tests.conftest import LVV_CONFIG

AMS = ZoneInfo("Europe/Amsterdam")
IN_FORCE = datetime(2024, 11, 15, 10, 0, tzinfo=AMS).timestamp()
ENDED = datetime(2025, 1, 1, 0, 0, 0, tzinfo=AMS).timestamp()
AFTERCARE_ENDED = datetime(2026, 7, 1, 0, 0, 0, tzinfo=AMS).timestamp()
CITY = ("case_manager", "privacy_officer", "jurist")


@pytest.fixture(scope="module")
def policy() -> CompiledPolicy:
    return compile_policy(load_config(LVV_CONFIG))


@dataclass(frozen=True)
class Row:
    org: str
    at: float
    registered: tuple[str, ...]
    scope: str | None
    expect: tuple[str, ...] | str  # the roles granted, or the OAuth error and its reason


ROWS = [
    pytest.param(Row("amsterdam", IN_FORCE, CITY, None, CITY), id="in force: every registered role"),
    pytest.param(Row("amsterdam", IN_FORCE, CITY, "case_manager", ("case_manager",)), id="in force: as asked"),
    pytest.param(
        Row("amsterdam", ENDED, CITY, None, ("privacy_officer", "jurist")), id="aftercare: oversight roles by default"
    ),
    pytest.param(Row("amsterdam", ENDED, CITY, "jurist", ("jurist",)), id="aftercare: an oversight role asked"),
    pytest.param(
        Row("amsterdam", ENDED, CITY, "jurist case_manager", "invalid_scope oversight_roles_only"),
        id="aftercare: an exchange role asked",
    ),
    pytest.param(
        Row("ind", ENDED, ("ind_officer",), None, "invalid_scope oversight_roles_only"),
        id="aftercare: a client without oversight roles",
    ),
    pytest.param(
        Row("amsterdam", AFTERCARE_ENDED, CITY, None, "unauthorized_client aftercare_ended"), id="aftercare ended"
    ),
    pytest.param(
        Row("utrecht", ENDED, ("case_manager",), None, ("case_manager",)), id="a successor covenant: exchange goes on"
    ),
    pytest.param(
        Row("amsterdam", ENDED, CITY, "ind_officer", "invalid_scope scope_not_allowed"),
        id="a role not registered is refused first",
    ),
]


@pytest.mark.parametrize("row", ROWS)
def test_token_roles_truth_table(policy: CompiledPolicy, row: Row) -> None:
    try:
        s = token_standing(policy, row.org, row.at)
        got: tuple[str, ...] | str = granted_roles(policy, s, row.registered, row.scope)
    except OAuthError as exc:
        got = f"{exc.error} {exc.reason}"
    assert got == row.expect


def test_an_organisation_party_to_no_covenant_is_unauthorized(policy: CompiledPolicy) -> None:
    with pytest.raises(OAuthError, match="party to no covenant in force") as raised:
        token_standing(policy, "atlantis", IN_FORCE)
    assert raised.value.reason == "no_covenant_in_force"
