"""After the covenants ended, on SQLite and PostgreSQL: tokens carry the oversight roles only until the
aftercare ends, then none; every refusal of an identified client, at the token endpoint and at the
API, is in the audit log before the answer, and the revocation report counts it."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import select

from gateway.auth.model import Status
from gateway.lifecycle.facts import covenant_end_facts
from gateway.store.tables import audit_entries
from tests.conftest import AMS, Gateway
from tests.support.oauth import Partner, api_headers, assertion, get_token, post_token, register, token_form

LAST_SECOND = datetime(2024, 12, 31, 23, 59, 59, tzinfo=AMS)
NEW_YEAR = datetime(2025, 1, 1, 0, 0, 0, tzinfo=AMS)
DAY_AFTER_AFTERCARE = datetime(2026, 7, 2, 0, 0, 0, tzinfo=AMS)
ENDED = "the covenants of amsterdam ended on 2024-12-31T23:59:59+01:00"


def amsterdam(gw: Gateway) -> Partner:
    return register(gw, "amsterdam", roles=("case_manager", "privacy_officer", "jurist"))


def ask(gw: Gateway, partner: Partner, **extra: str) -> Any:
    return post_token(gw, token_form(assertion(gw, partner), **extra))


def entries(gw: Gateway, event: str) -> list[dict[str, Any]]:
    with gw.container.db.read.connect() as conn:
        rows = conn.execute(select(audit_entries.c.entry).order_by(audit_entries.c.seq)).scalars()
        return [e for e in map(json.loads, rows) if e["event"] == event]


def test_after_the_end_a_client_gets_a_token_for_its_oversight_roles_only(gateway: Gateway) -> None:
    partner = amsterdam(gateway)
    gateway.clock.set(NEW_YEAR)
    response = ask(gateway, partner)
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "privacy_officer jurist"
    assert ask(gateway, partner, scope="jurist").json()["scope"] == "jurist"


def test_after_the_end_asking_for_an_exchange_role_is_an_invalid_scope_that_says_why(gateway: Gateway) -> None:
    partner = amsterdam(gateway)
    gateway.clock.set(NEW_YEAR)
    response = ask(gateway, partner, scope="case_manager")
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_scope",
        "error_description": f"{ENDED}; only oversight roles (jurist, privacy_officer, steering) remain "
        "until 2026-07-01T00:00:00+02:00",
    }
    [refused] = entries(gateway, "auth.token.refused")
    assert (refused["client_id"], refused["organisation"], refused["decision"], refused["reason"]) == (
        partner.client_id,
        "amsterdam",
        "deny",
        "oversight_roles_only",
    )
    assert refused["time"] == "2024-12-31T23:00:00Z"  # the policy clock, as every entry
    assert "client_assertion" not in json.dumps(refused)


def test_a_day_after_the_aftercare_the_client_is_unauthorized_and_told_why(gateway: Gateway) -> None:
    partner = amsterdam(gateway)
    gateway.clock.set(DAY_AFTER_AFTERCARE)
    response = ask(gateway, partner)
    assert response.status_code == 400
    assert response.json() == {
        "error": "unauthorized_client",
        "error_description": f"{ENDED}; their aftercare period ended on 2026-07-01T00:00:00+02:00",
    }
    assert [e["reason"] for e in entries(gateway, "auth.token.refused")] == ["aftercare_ended"]


def test_a_utrecht_client_keeps_its_exchange_roles_under_the_local_covenant(gateway: Gateway) -> None:
    partner = register(gateway, "utrecht", roles=("case_manager",))
    gateway.clock.set(NEW_YEAR)
    assert ask(gateway, partner).json()["scope"] == "case_manager"


def test_refusals_that_name_no_proven_client_stay_out_of_the_audit_log(gateway: Gateway) -> None:
    partner = amsterdam(gateway)
    forged = assertion(gateway, partner, key=register(gateway).key)  # signed with another client's key
    assert post_token(gateway, token_form(forged)).status_code == 401
    p = gateway.register("amsterdam")
    garbage = gateway.http.get(f"/v1/participants/{p}", headers=api_headers("not.a.token"))
    assert garbage.status_code == 401
    assert entries(gateway, "auth.token.refused") == []
    assert entries(gateway, "auth.refused") == []


def test_a_replayed_assertion_of_a_known_client_is_audited(gateway: Gateway) -> None:
    partner = amsterdam(gateway)
    once = assertion(gateway, partner)
    assert post_token(gateway, token_form(once)).status_code == 200
    assert post_token(gateway, token_form(once)).status_code == 401
    assert [(e["client_id"], e["reason"]) for e in entries(gateway, "auth.token.refused")] == [
        (partner.client_id, "assertion_replayed")
    ]


def test_api_refusals_of_a_verified_token_are_audited_before_the_answer(gateway: Gateway) -> None:
    p = gateway.register("amsterdam")
    partner = register(gateway, "amsterdam", roles=("case_manager",))
    token = get_token(gateway, partner)

    scope = gateway.http.get(f"/v1/participants/{p}", headers=api_headers(token, role="jurist"))
    assert scope.status_code == 403
    no_user = {k: v for k, v in api_headers(token).items() if k != "Acting-User"}
    missing = gateway.http.get(f"/v1/participants/{p}", headers=no_user)
    assert missing.status_code == 400
    gateway.container.auth.registry.set_client_status(partner.client_id, Status.DISABLED, "test")
    revoked = gateway.http.get(f"/v1/participants/{p}", headers=api_headers(token))
    assert revoked.status_code == 401

    refused = entries(gateway, "auth.refused")
    assert [e["reason"] for e in refused] == ["insufficient_scope", "acting_user_missing", "client_disabled"]
    assert {e["client_id"] for e in refused} == {partner.client_id}
    assert {e["path"] for e in refused} == {"/v1/participants/{pseudonym}"}
    assert [e["role"] for e in refused] == ["jurist", "case_manager", "case_manager"]
    assert [e["acting_user"] for e in refused] == ["tester.1", None, "tester.1"]
    assert all(e["decision"] == "deny" and e["policy_version"] for e in refused)
    assert scope.json()["audit_seq"] > 0
    assert missing.json()["audit_seq"] > scope.json()["audit_seq"]


def test_the_revocation_report_counts_refusals_before_the_decision_after_the_end(gateway: Gateway) -> None:
    p = gateway.register("amsterdam")
    partner = amsterdam(gateway)
    gateway.clock.set(LAST_SECOND)
    token = get_token(gateway, partner, scope="case_manager")
    gateway.clock.set(NEW_YEAR)
    assert ask(gateway, partner, scope="case_manager").status_code == 400
    assert gateway.http.get(f"/v1/participants/{p}", headers=api_headers(token, role="jurist")).status_code == 403
    decided = gateway.http.get(f"/v1/participants/{p}", headers=api_headers(token))
    assert decided.json()["code"] == "no_covenant_in_force"

    assert gateway.container.lifecycle is not None
    policy = gateway.container.lifecycle.holder.current
    facts = covenant_end_facts(gateway.container.db, policy, "lvv-amsterdam", DAY_AFTER_AFTERCARE)
    attempts = [(a.event, a.client_id, a.reason, a.outcome) for a in facts.attempts_after_end]
    assert (("auth.token.refused", partner.client_id, "oversight_roles_only", "denied")) in attempts
    assert (("auth.refused", partner.client_id, "insufficient_scope", "denied")) in attempts
    assert any(a[0].startswith("exchange.") and a[2] == "no_covenant_in_force" for a in attempts)


def test_an_expired_token_is_refused_naming_the_clock_it_was_checked_against(gateway: Gateway) -> None:
    p = gateway.register("amsterdam")
    token = get_token(gateway, register(gateway, "amsterdam", roles=("case_manager",)))
    gateway.clock.set(NEW_YEAR)  # the test gateway's one clock times tokens too: long past the token's exp
    response = gateway.http.get(f"/v1/participants/{p}", headers=api_headers(token))
    assert response.status_code == 401
    assert "checked against the gateway's token clock 2024-12-31T23:00:00Z" in response.json()["detail"]
    assert entries(gateway, "auth.refused") == []  # an expired token proves no client now
