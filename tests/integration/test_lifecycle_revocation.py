"""Covenant revocation and mandate withdrawal, end to end over HTTP, against SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from gateway.lifecycle.events import Actor
from gateway.lifecycle.holder import PolicyHolder
from gateway.lifecycle.service import LifecycleRefused, LifecycleService
from gateway.store.tables import audit_entries
from tests.conftest import AMS, Gateway

JURIST = Actor.jurist("amsterdam", "jurist.1")


def service(gw: Gateway) -> LifecycleService:
    assert gw.container.lifecycle is not None
    return gw.container.lifecycle.service


def read(gw: Gateway, org: str, role: str, purpose: str, pseudonym: str) -> int:
    response = gw.http.get(f"/v1/participants/{pseudonym}", headers=gw.headers(org, role, purpose))
    return response.status_code


def entries(gw: Gateway, event: str) -> list[dict]:  # type: ignore[type-arg]
    with gw.container.db.read.connect() as conn:
        rows = conn.execute(select(audit_entries.c.entry).order_by(audit_entries.c.seq)).scalars()
        return [e for e in map(json.loads, rows) if e["event"] == event]


def test_a_revoked_covenant_stops_sharing_at_its_effective_second(gateway: Gateway) -> None:
    p = gateway.register()
    ind = gateway.pseudonym_for("ind", p)
    effective = datetime(2024, 12, 1, 12, 0, 0, tzinfo=AMS)
    service(gateway).revoke_covenant(
        JURIST, "lvv-amsterdam", effective, "Early end agreed by the parties", "B&W 2024/77"
    )

    gateway.clock.set(effective - timedelta(seconds=1))
    assert read(gateway, "ind", "ind_officer", "identity_nationality", ind) == 200
    assert read(gateway, "amsterdam", "case_manager", "lso_case_discussion", p) == 200
    gateway.clock.set(effective)
    response = gateway.http.get(
        f"/v1/participants/{p}", headers=gateway.headers("amsterdam", "case_manager", "lso_case_discussion")
    )
    assert response.status_code == 403
    assert response.json()["code"] == "no_covenant_in_force"
    # IND is a party elsewhere still: an Amsterdam participant is now outside every covenant it has
    assert read(gateway, "ind", "ind_officer", "identity_nationality", ind) == 404


def test_a_revocation_is_logged_with_its_reason_authority_and_moment(gateway: Gateway) -> None:
    effective = gateway.clock.now() + timedelta(days=2)
    fact = service(gateway).revoke_covenant(JURIST, "lvv-amsterdam", effective, "Parties ended it early", "B&W 2024/78")
    (entry,) = entries(gateway, "covenant.revoked")
    assert entry["seq"] == fact.audit_seq
    assert entry["covenants"] == ["lvv-amsterdam"]
    assert entry["authority_reference"] == "B&W 2024/78"
    assert entry["revocation_reason"] == "Parties ended it early"
    assert entry["acting_user"] == "jurist.1"
    assert entry["role"] == "jurist"
    assert datetime.fromisoformat(entry["effective_at"].replace("Z", "+00:00")) == effective


def test_decisions_after_a_revocation_name_the_lifecycle_version(gateway: Gateway) -> None:
    p = gateway.register()
    service(gateway).revoke_covenant(
        JURIST, "lvv-amsterdam", gateway.clock.now() + timedelta(days=2), "Parties ended it early", "B&W 2024/79"
    )
    assert read(gateway, "amsterdam", "case_manager", "lso_case_discussion", p) == 200
    last = entries(gateway, "exchange.read")[-1]
    assert last["lifecycle_version"].startswith("lifecycle:")
    assert last["policy_version"] == gateway.container.policy.version


@pytest.mark.parametrize("offset", [timedelta(0), timedelta(seconds=59), timedelta(days=-1)])
def test_a_revocation_sooner_than_the_propagation_margin_is_refused(gateway: Gateway, offset: timedelta) -> None:
    with pytest.raises(LifecycleRefused) as refused:
        service(gateway).revoke_covenant(
            JURIST, "lvv-amsterdam", gateway.clock.now() + offset, "Too soon to propagate", "B&W 2024/80"
        )
    assert refused.value.code == "effective_too_soon"
    assert entries(gateway, "covenant.revoked") == []


def test_only_a_jurist_of_a_party_may_revoke_a_covenant(gateway: Gateway) -> None:
    later = gateway.clock.now() + timedelta(days=1)
    with pytest.raises(LifecycleRefused) as not_party:
        service(gateway).revoke_covenant(
            Actor.jurist("rotterdam", "jurist.2"), "lvv-amsterdam", later, "Not our covenant", "X 1"
        )
    assert not_party.value.code == "not_a_party"
    with pytest.raises(LifecycleRefused) as not_jurist:
        service(gateway).revoke_covenant(
            Actor("ind", "officer.1", "jurist"), "lvv-amsterdam", later, "IND has no jurist role", "X 2"
        )
    assert not_jurist.value.code == "role_not_allowed"  # decided by the oversight gate


def test_a_withdrawn_mandate_removes_the_permissions_it_carries_at_that_second(gateway: Gateway) -> None:
    p = gateway.register()
    ngo = gateway.pseudonym_for("ngo-opvang-amsterdam", p)
    effective = datetime(2024, 12, 1, 9, 0, 0, tzinfo=AMS)
    service(gateway).withdraw_mandate(
        JURIST, "mandaat-lvv-amsterdam", effective, "Shelter contract ended", "Intrekkingsbesluit 2024/12"
    )
    gateway.clock.set(effective - timedelta(seconds=1))
    assert read(gateway, "ngo-opvang-amsterdam", "counsellor", "shelter_counselling", ngo) == 200
    gateway.clock.set(effective)
    response = gateway.http.get(
        f"/v1/participants/{ngo}", headers=gateway.headers("ngo-opvang-amsterdam", "counsellor", "shelter_counselling")
    )
    assert response.status_code == 403
    assert response.json()["code"] == "no_mandate_in_force"
    # What the covenant grants without the mandate goes on: the city itself still reads.
    assert read(gateway, "amsterdam", "case_manager", "shelter_counselling", p) == 200
    (entry,) = entries(gateway, "mandate.withdrawn")
    assert entry["rule_ids"] == ["shelter-ngo-read", "shelter-ngo-write", "shelter-ngo-list"]


def test_only_the_mandators_jurist_may_withdraw_a_mandate(gateway: Gateway) -> None:
    with pytest.raises(LifecycleRefused) as refused:
        service(gateway).withdraw_mandate(
            Actor.jurist("utrecht", "jurist.3"),
            "mandaat-lvv-amsterdam",
            gateway.clock.now() + timedelta(days=1),
            "Not our mandate",
            "X 3",
        )
    assert refused.value.code == "not_the_mandator"


def test_another_gateway_process_learns_a_revocation_before_it_takes_effect(gateway: Gateway) -> None:
    """A second holder on the same database (another process) polls the version and swaps its policy."""
    other = PolicyHolder(gateway.container.policy, gateway.container.db, poll_seconds=0)
    other.start()
    assert other.current.lifecycle.revocations == {}
    effective = gateway.clock.now() + timedelta(minutes=5)
    service(gateway).revoke_covenant(JURIST, "lvv-amsterdam", effective, "Parties ended it early", "B&W 2024/81")
    assert other.refresh() is True
    assert other.current.covenants["lvv-amsterdam"].ends_ts == effective.timestamp()
    assert other.refresh() is False  # nothing moved since
