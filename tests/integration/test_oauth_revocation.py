"""Revocation that bites per request, on SQLite and PostgreSQL: a disabled client, a disabled
organisation, and an organisation whose covenants and aftercare have ended make their tokens useless
at once, in every gateway process, not when the tokens expire. Each refusal is a 401 and is logged."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import httpx
import pytest

from gateway.auth.model import Status
from gateway.auth.revocation import PartyRevocation
from gateway.container import Container, build
from tests.conftest import AMS, Gateway
from tests.support.oauth import (
    api_headers,
    captured_logs,
    ec_key,
    events_named,
    get_token,
    public_jwks,
    register,
)


def read(
    gw: Gateway, token: str, pseudonym: str, role: str = "case_manager", purpose: str = "lso_case_discussion"
) -> httpx.Response:
    return gw.http.get(f"/v1/participants/{pseudonym}", headers=api_headers(token, role, purpose))


def assert_revoked(gw: Gateway, token: str, pseudonym: str, reason: str, **kw: str) -> None:
    with captured_logs() as events:
        response = read(gw, token, pseudonym, **kw)
    assert response.status_code == 401, response.text
    assert response.json()["code"] == "invalid_token"
    assert "invalid_token" in response.headers["www-authenticate"]
    assert [e["reason"] for e in events_named(events, "auth.token.rejected")] == [f"revoked: {reason}"]


@pytest.fixture
def other_process(gateway: Gateway) -> Iterator[Container]:
    """The same gateway built a second time over the same database: another process's view of it."""
    second = build(gateway.container.settings, gateway.clock)
    yield second
    second.close()


def test_a_disabled_clients_token_stops_working_at_once_and_works_again_when_enabled(gateway: Gateway) -> None:
    p = gateway.register("amsterdam")
    partner = register(gateway)
    token = get_token(gateway, partner)
    assert read(gateway, token, p).status_code == 200
    gateway.container.auth.registry.set_client_status(partner.client_id, Status.DISABLED, "test")
    assert_revoked(gateway, token, p, "client_disabled")
    gateway.container.auth.registry.set_client_status(partner.client_id, Status.ACTIVE)
    assert read(gateway, token, p).status_code == 200


def test_disabling_a_client_leaves_other_clients_of_its_organisation_working(gateway: Gateway) -> None:
    p = gateway.register("amsterdam")
    partner, colleague = register(gateway), register(gateway)
    token, other = get_token(gateway, partner), get_token(gateway, colleague)
    gateway.container.auth.registry.set_client_status(partner.client_id, Status.DISABLED)
    assert_revoked(gateway, token, p, "client_disabled")
    assert read(gateway, other, p).status_code == 200


def test_a_disabled_organisation_makes_every_token_naming_it_useless(gateway: Gateway) -> None:
    p = gateway.register("amsterdam")
    token = get_token(gateway, register(gateway, "amsterdam"))
    external = gateway.token("amsterdam")  # signed by an additionally trusted issuer key
    rotterdam = get_token(gateway, register(gateway, "rotterdam", roles=("case_manager",)))
    gateway.container.auth.registry.set_organisation_status("amsterdam", Status.DISABLED, "mandate withdrawn")
    assert_revoked(gateway, token, p, "organisation_disabled")
    assert_revoked(gateway, external, p, "organisation_disabled")
    assert read(gateway, rotterdam, gateway.pseudonym_for("rotterdam", p)).status_code == 404  # still authenticated
    gateway.container.auth.registry.set_organisation_status("amsterdam", Status.ACTIVE)
    assert read(gateway, token, p).status_code == 200


def test_a_token_issued_before_the_end_is_denied_by_the_decision_from_the_end_second_and_revoked_after_aftercare(
    gateway: Gateway,
) -> None:
    gateway.container.settings.access_token_lifetime_seconds = 600 * 86400  # outlives the aftercare
    p = gateway.register("amsterdam")
    ind = gateway.pseudonym_for("ind", p)
    gateway.clock.set(datetime(2024, 12, 31, 23, 50, 0, tzinfo=AMS))
    token = get_token(gateway, register(gateway, "ind", roles=("ind_officer",)))
    gateway.clock.set(datetime(2024, 12, 31, 23, 59, 59, tzinfo=AMS))
    assert read(gateway, token, ind, "ind_officer", "identity_nationality").status_code == 200
    gateway.clock.set(datetime(2025, 1, 1, 0, 0, 0, tzinfo=AMS))
    denied = read(gateway, token, ind, "ind_officer", "identity_nationality")
    assert denied.status_code == 403  # still verifiable: the decision denies, in the audit log
    assert denied.json()["code"] == "no_covenant_in_force"
    assert "audit_seq" in denied.json()
    gateway.clock.set(datetime(2026, 7, 1, 0, 0, 0, tzinfo=AMS))
    assert_revoked(gateway, token, ind, "aftercare_ended", role="ind_officer", purpose="identity_nationality")


def test_an_organisation_with_a_successor_covenant_keeps_working_after_the_others_ended(gateway: Gateway) -> None:
    gateway.container.settings.access_token_lifetime_seconds = 3600
    p = gateway.register("utrecht")
    gateway.clock.set(datetime(2024, 12, 31, 23, 30, 0, tzinfo=AMS))
    token = get_token(gateway, register(gateway, "utrecht", roles=("case_manager",)))
    gateway.clock.set(datetime(2025, 1, 1, 0, 0, 0, tzinfo=AMS))
    response = read(gateway, token, p, purpose="shelter_counselling")
    assert response.status_code == 200, response.text


def test_a_client_disabled_by_another_gateway_process_is_refused_here_on_the_next_request(
    gateway: Gateway, other_process: Container
) -> None:
    p = gateway.register("amsterdam")
    partner = register(gateway)
    token = get_token(gateway, partner)
    assert read(gateway, token, p).status_code == 200
    assert gateway.container.verifier.cached == 1
    other_process.auth.registry.set_client_status(partner.client_id, Status.DISABLED)
    assert_revoked(gateway, token, p, "client_disabled")


def test_revocation_clears_the_verified_token_cache(gateway: Gateway) -> None:
    p = gateway.register("amsterdam")
    partner, colleague = register(gateway), register(gateway)
    read(gateway, get_token(gateway, partner), p)
    read(gateway, get_token(gateway, colleague), p)
    assert gateway.container.verifier.cached == 2
    gateway.container.auth.registry.set_client_status(partner.client_id, Status.DISABLED)
    assert gateway.container.verifier.cached == 0


def test_a_token_of_an_unregistered_client_signed_by_the_gateway_key_is_refused(gateway: Gateway) -> None:
    """A gateway-issued token is bound to its registered client: gone from the registry, gone."""
    from sqlalchemy import delete

    from gateway.store.tables import auth_clients

    p = gateway.register("amsterdam")
    partner = register(gateway)
    token = get_token(gateway, partner)
    with gateway.container.db.write.begin() as conn:
        conn.execute(delete(auth_clients).where(auth_clients.c.client_id == partner.client_id))
        gateway.container.auth.repo.bump_epoch(conn)
    assert_revoked(gateway, token, p, "client_unknown")


def test_the_status_is_cached_behind_the_epoch_and_a_change_in_another_process_still_bites(
    gateway: Gateway, other_process: Container
) -> None:
    p = gateway.register("amsterdam")
    partner = register(gateway)
    token = get_token(gateway, partner)
    revocation = gateway.container.auth.verifier._revocation
    assert isinstance(revocation, PartyRevocation)
    assert read(gateway, token, p).status_code == 200
    reads = revocation.reads
    for _ in range(3):
        assert read(gateway, token, p).status_code == 200
    assert revocation.reads == reads  # answered from the cache: the epoch did not move
    other_process.auth.registry.set_organisation_status("amsterdam", Status.DISABLED, "mandate withdrawn")
    assert_revoked(gateway, token, p, "organisation_disabled")
    assert revocation.reads == reads + 1
    other_process.auth.registry.set_organisation_status("amsterdam", Status.ACTIVE)
    assert read(gateway, token, p).status_code == 200


def test_an_unregistered_clients_status_is_cached_too_and_every_change_still_bites_on_the_next_request(
    gateway: Gateway, other_process: Container
) -> None:
    """A client trusted through the JWKS file and never registered: "not registered" is cached behind
    the epoch like any status, and a revocation, a registration or a client's disabling in another
    process takes effect at the very next request."""
    p = gateway.register("amsterdam")
    token = gateway.token("amsterdam")  # signed by the additionally trusted key; client-amsterdam
    revocation = gateway.container.auth.verifier._revocation
    assert isinstance(revocation, PartyRevocation)
    assert read(gateway, token, p).status_code == 200
    reads = revocation.reads
    for _ in range(3):
        assert read(gateway, token, p).status_code == 200
    assert revocation.reads == reads  # "not registered" answered from the cache
    other_process.auth.registry.set_organisation_status("amsterdam", Status.DISABLED, "mandate withdrawn")
    assert_revoked(gateway, token, p, "organisation_disabled")
    other_process.auth.registry.set_organisation_status("amsterdam", Status.ACTIVE)
    assert read(gateway, token, p).status_code == 200
    other_process.auth.registry.register(
        "client-amsterdam", "amsterdam", ("case_manager",), jwks=public_jwks(ec_key("client-amsterdam-k1"))
    )
    assert read(gateway, token, p).status_code == 200
    status = gateway.container.verifier.authenticate(token).status
    assert status is not None
    assert status.client is Status.ACTIVE  # no stale "not registered"
    other_process.auth.registry.set_client_status("client-amsterdam", Status.DISABLED, "test")
    assert_revoked(gateway, token, p, "client_disabled")
