"""Which tokens are revoked at a moment: a truth table over the token's origin, the client's and the
organisation's status, and the organisation's covenants and their aftercare (pure: compiled policy,
statuses, the policy clock)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from zoneinfo import ZoneInfo

import pytest

from gateway.auth.model import PartyStatus, Status
from gateway.auth.revocation import revocation_reason
from gateway.auth.tokens import VerifiedToken
from gateway.exchange.context import Principal
from gateway.policies.compiled import CompiledPolicy, compile_policy
from gateway.policies.loader import load_config
from gateway.policies.oversight import standing
from tests.conftest import LVV_CONFIG

AMS = ZoneInfo("Europe/Amsterdam")
IN_FORCE = datetime(2024, 11, 15, 10, 0, tzinfo=AMS).timestamp()
LAST_SECOND = datetime(2024, 12, 31, 23, 59, 59, tzinfo=AMS).timestamp()
ENDED = datetime(2025, 1, 1, 0, 0, 0, tzinfo=AMS).timestamp()
AFTERCARE_LAST_SECOND = datetime(2026, 6, 30, 23, 59, 59, tzinfo=AMS).timestamp()
AFTERCARE_ENDED = datetime(2026, 7, 1, 0, 0, 0, tzinfo=AMS).timestamp()


@pytest.fixture(scope="module")
def policy() -> CompiledPolicy:
    return compile_policy(load_config(LVV_CONFIG))


def token(org: str, gateway_issued: bool = True) -> VerifiedToken:
    principal = Principal(organisation=org, client_id=f"client-{org}", token_id="t" * 22, expires_at=0)
    return VerifiedToken(principal, MappingProxyType({}), None, None, gateway_issued)


def status(client: Status | None = Status.ACTIVE, org_disabled: bool = False) -> PartyStatus:
    return PartyStatus(epoch=1, client=client, organisation_disabled=org_disabled, rate_limit_per_minute=None)


@dataclass(frozen=True)
class Row:
    org: str
    gateway_issued: bool
    client: Status | None
    org_disabled: bool
    at: float
    expect: str | None


ROWS = [
    pytest.param(Row("amsterdam", True, Status.ACTIVE, False, IN_FORCE, None), id="an active client under a covenant"),
    pytest.param(Row("ind", True, Status.ACTIVE, False, LAST_SECOND, None), id="still valid in the last second"),
    pytest.param(
        Row("ind", True, Status.ACTIVE, False, ENDED, None),
        id="every covenant ended, aftercare open: left to the decision (403, audited)",
    ),
    pytest.param(
        Row("ind", True, Status.ACTIVE, False, AFTERCARE_LAST_SECOND, None), id="the last second of the aftercare"
    ),
    pytest.param(
        Row("ind", True, Status.ACTIVE, False, AFTERCARE_ENDED, "aftercare_ended"),
        id="covenants and aftercare ended: revoked",
    ),
    pytest.param(
        Row("ngo-terugkeer", True, Status.ACTIVE, False, AFTERCARE_ENDED, "aftercare_ended"),
        id="an NGO after its aftercare: revoked",
    ),
    pytest.param(
        Row("utrecht", True, Status.ACTIVE, False, ENDED, None), id="a successor covenant keeps its party working"
    ),
    pytest.param(
        Row("amsterdam", True, Status.DISABLED, False, IN_FORCE, "client_disabled"), id="a disabled client is revoked"
    ),
    pytest.param(
        Row("amsterdam", True, Status.ACTIVE, True, IN_FORCE, "organisation_disabled"),
        id="a disabled organisation is revoked",
    ),
    pytest.param(
        Row("amsterdam", True, Status.DISABLED, True, IN_FORCE, "organisation_disabled"),
        id="the organisation's revocation is named first",
    ),
    pytest.param(
        Row("amsterdam", True, None, False, IN_FORCE, "client_unknown"),
        id="a gateway token needs its client registered",
    ),
    pytest.param(
        Row("atlantis", True, Status.ACTIVE, False, IN_FORCE, "organisation_unknown"),
        id="a gateway token of an organisation not in the configuration",
    ),
    pytest.param(
        Row("amsterdam", False, None, False, IN_FORCE, None), id="an external issuer's token for an unregistered client"
    ),
    pytest.param(
        Row("ind", False, None, False, ENDED, None),
        id="an external issuer's token after the end: left to the decision (403, audited)",
    ),
    pytest.param(
        Row("amsterdam", False, None, True, IN_FORCE, "organisation_disabled"),
        id="an external issuer's token of a disabled organisation",
    ),
    pytest.param(
        Row("amsterdam", False, Status.DISABLED, False, IN_FORCE, "client_disabled"),
        id="an external issuer's token of a client disabled here",
    ),
]


@pytest.mark.parametrize("row", ROWS)
def test_revocation_truth_table(policy: CompiledPolicy, row: Row) -> None:
    reason = revocation_reason(token(row.org, row.gateway_issued), status(row.client, row.org_disabled), policy, row.at)
    assert reason == row.expect


def test_an_organisation_party_to_no_covenant_at_all_has_none_in_force(policy: CompiledPolicy) -> None:
    assert not standing(policy, "nobody", IN_FORCE).exchange_in_force
    assert standing(policy, "ngo-medisch", IN_FORCE).exchange_in_force
    assert standing(policy, "ngo-medisch", ENDED).exchange_in_force  # party to the Utrecht successor
    assert not standing(policy, "ngo-terugkeer", ENDED).exchange_in_force
