"""Legal holds over HTTP: set and lifted by a jurist, logged, and restricting access to the legal procedure."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from sqlalchemy import select

from gateway.lifecycle.events import Actor
from gateway.lifecycle.model import LegalHold
from gateway.lifecycle.service import LifecycleRefused, LifecycleService
from gateway.store.tables import audit_entries
from tests.conftest import AMS, Gateway

JURIST = Actor.jurist("amsterdam", "jurist.1")
AFTER_END = datetime(2025, 2, 3, 10, 0, tzinfo=AMS)


def service(gw: Gateway) -> LifecycleService:
    assert gw.container.lifecycle is not None
    return gw.container.lifecycle.service


def pid(gw: Gateway, pseudonym: str) -> str:
    ref = gw.container.store.resolve("amsterdam", pseudonym)
    assert ref is not None
    return ref.id


def hold(gw: Gateway, pseudonym: str, reason: str = "appeal") -> LegalHold:
    return service(gw).set_hold(JURIST, pid(gw, pseudonym), reason, "AWB 25/0042 (synthetic)")


def get(gw: Gateway, org: str, role: str, purpose: str, pseudonym: str):  # type: ignore[no-untyped-def]
    return gw.http.get(f"/v1/participants/{pseudonym}", headers=gw.headers(org, role, purpose))


def events(gw: Gateway, name: str) -> list[dict]:  # type: ignore[type-arg]
    with gw.container.db.read.connect() as conn:
        rows = conn.execute(select(audit_entries.c.entry).order_by(audit_entries.c.seq)).scalars()
        return [e for e in map(json.loads, rows) if e["event"] == name]


def test_a_participant_under_a_hold_is_read_only_for_the_legal_procedure(gateway: Gateway) -> None:
    p = gateway.register()
    hold(gateway, p)
    denied = get(gateway, "amsterdam", "case_manager", "lso_case_discussion", p)
    assert denied.status_code == 403
    assert denied.json()["code"] == "participant_under_legal_hold"
    assert "Synthetisch" not in denied.text
    allowed = get(gateway, "amsterdam", "jurist", "legal_procedure", p)
    assert allowed.status_code == 200
    assert allowed.json()["audit"]["rule_ids"] == ["legal-procedure-city-read"]
    assert allowed.json()["records"]["identity"]["fields"]["family_name"] == "Synthetisch-001"


def test_a_participant_under_a_hold_cannot_be_written_for_another_purpose(gateway: Gateway) -> None:
    p = gateway.register()
    hold(gateway, p, "objection")
    response = gateway.http.put(
        f"/v1/participants/{p}/records/case_plan",
        json={"fields": {"phase": "opvangfase"}},
        headers=gateway.headers("amsterdam", "case_manager", "intake"),
    )
    assert response.status_code == 403
    assert response.json()["code"] == "participant_under_legal_hold"


def test_after_the_covenant_end_the_held_participant_is_still_read_for_the_appeal_only(gateway: Gateway) -> None:
    held, other = gateway.register(), gateway.register()
    hold(gateway, held)
    gateway.clock.set(AFTER_END)
    assert get(gateway, "amsterdam", "jurist", "legal_procedure", held).status_code == 200
    not_held = get(gateway, "amsterdam", "jurist", "legal_procedure", other)
    assert not_held.status_code == 403
    assert not_held.json()["code"] == "no_covenant_in_force"
    assert get(gateway, "amsterdam", "case_manager", "lso_case_discussion", held).status_code == 403


def test_lifting_the_hold_ends_the_restriction_and_the_after_end_access(gateway: Gateway) -> None:
    p = gateway.register()
    h = hold(gateway, p)
    lifted = service(gateway).lift_hold(JURIST, h.id, "Appeal decided: judgment final")
    assert lifted.lifted_at == gateway.clock.now()
    assert get(gateway, "amsterdam", "case_manager", "lso_case_discussion", p).status_code == 200
    gateway.clock.set(AFTER_END)
    assert get(gateway, "amsterdam", "jurist", "legal_procedure", p).status_code == 403


def test_setting_and_lifting_a_hold_are_both_in_the_audit_log(gateway: Gateway) -> None:
    p = gateway.register()
    h = hold(gateway, p)
    service(gateway).lift_hold(JURIST, h.id, "Objection withdrawn")
    (set_entry,) = events(gateway, "legal_hold.set")
    (lift_entry,) = events(gateway, "legal_hold.lifted")
    assert set_entry["participant"] == lift_entry["participant"] == pid(gateway, p)
    assert set_entry["hold_reason"] == "appeal"
    assert set_entry["case_reference"] == "AWB 25/0042 (synthetic)"
    assert set_entry["region"] == "amsterdam"
    assert lift_entry["lift_reason"] == "Objection withdrawn"
    assert set_entry["seq"] == h.set_audit_seq
    assert "Synthetisch" not in json.dumps(set_entry)


def test_a_held_participant_is_left_out_of_listings_for_other_purposes(gateway: Gateway) -> None:
    mine = [gateway.register() for _ in range(3)]
    hold(gateway, mine[0])
    response = gateway.http.get(
        "/v1/participants",
        params={"limit": 2},
        headers=gateway.headers("amsterdam", "case_manager", "lso_case_discussion"),
    )
    listed = [i["participant"] for i in response.json()["items"]]
    assert len(listed) == 2  # the page is filled past the held participant
    assert set(listed) == set(mine[1:])


def test_only_a_jurist_of_the_participants_region_may_set_a_hold(gateway: Gateway) -> None:
    p = gateway.register()
    with pytest.raises(LifecycleRefused) as other_city:
        service(gateway).set_hold(Actor.jurist("rotterdam", "jurist.9"), pid(gateway, p), "appeal", "AWB 1")
    assert other_city.value.code == "unknown_participant"
    with pytest.raises(LifecycleRefused) as case_manager:
        service(gateway).set_hold(Actor("amsterdam", "cm.1", "case_manager"), pid(gateway, p), "appeal", "AWB 2")
    assert case_manager.value.code == "no_oversight_activity"
    with pytest.raises(LifecycleRefused) as reason:
        service(gateway).set_hold(JURIST, pid(gateway, p), "curiosity", "AWB 3")
    assert reason.value.code == "unknown_reason"
    logged = [(e["role"], e["decision"], e["reason"]) for e in events(gateway, "legal_hold.set")]
    assert logged == [("case_manager", "deny", "no_oversight_activity")]  # the gate's refusal; nothing set


def test_a_hold_cannot_be_lifted_twice(gateway: Gateway) -> None:
    h = hold(gateway, gateway.register())
    service(gateway).lift_hold(JURIST, h.id, "Decided")
    with pytest.raises(LifecycleRefused) as again:
        service(gateway).lift_hold(JURIST, h.id, "Decided again")
    assert again.value.code == "already_lifted"
