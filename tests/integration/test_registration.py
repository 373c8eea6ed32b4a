"""Only a rule that grants registration creates a participant (issue 10, item 5)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from sqlalchemy import func, select

from gateway.store.tables import audit_entries, participants
from tests.conftest import Gateway, synthetic_records

# Each of these writes its own category under a write rule, and none may register a participant with it.
WRITERS = [
    pytest.param(
        "ind",
        "ind_officer",
        "identity_nationality",
        {"identity_doubt": {"identity_in_doubt": False}},
        id="IND",
    ),
    pytest.param(
        "dtv",
        "return_officer",
        "return_support",
        {"return_track": {"return_willingness": "unknown"}},
        id="DTV",
    ),
    pytest.param("avim", "screening_officer", "police_screening", {"screening": {"no_show_count": 0}}, id="AVIM"),
    pytest.param(
        "ngo-opvang-amsterdam",
        "counsellor",
        "shelter_counselling",
        {"counselling_notes": {"notes": "synthetic"}},
        id="NGO",
    ),
]


def registered(gw: Gateway) -> int:
    with gw.container.db.read.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(participants)).scalar_one())


def entry_at(gw: Gateway, seq: int) -> dict[str, Any]:
    with gw.container.db.read.connect() as conn:
        raw = conn.execute(select(audit_entries.c.entry).where(audit_entries.c.seq == seq)).scalar_one()
    return dict(orjson.loads(raw))


@pytest.mark.parametrize(("org", "role", "purpose", "records"), WRITERS)
def test_a_writer_without_a_registration_rule_cannot_register_a_participant(
    gateway: Gateway, org: str, role: str, purpose: str, records: dict[str, Any]
) -> None:
    body = {"region": "amsterdam", "records": records}
    response = gateway.http.post("/v1/participants", json=body, headers=gateway.headers(org, role, purpose))
    assert response.status_code == 403, response.text
    problem = response.json()
    assert problem["code"] == "no_rule_for_purpose"
    entry = entry_at(gateway, problem["audit_seq"])
    assert (entry["event"], entry["decision"], entry["organisation"]) == ("exchange.register", "deny", org)
    assert registered(gateway) == 0


def test_a_citys_intake_officer_registers_a_participant(gateway: Gateway) -> None:
    body = {"region": "amsterdam", "records": synthetic_records()}
    headers = gateway.headers("amsterdam", "intake_officer", "intake")
    response = gateway.http.post("/v1/participants", json=body, headers=headers)
    assert response.status_code == 201, response.text
    assert response.json()["audit"]["rule_ids"] == ["intake-city-write"]
    assert registered(gateway) == 1


def test_a_city_still_writes_its_own_category_of_a_registered_participant(gateway: Gateway) -> None:
    p = gateway.register("amsterdam")
    response = gateway.http.put(
        f"/v1/participants/{p}/records/case_plan",
        json={"fields": {"phase": "perspectieffase"}},
        headers=gateway.headers("amsterdam", "case_manager", "intake"),
    )
    assert response.status_code == 200, response.text
