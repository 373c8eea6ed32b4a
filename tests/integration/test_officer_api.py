"""The officer query API: role-bound, scoped, paged, exported, and every access logged (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import io
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from gateway.store.tables import audit_entries
from tests.conftest import Gateway


def officer(gw: Gateway, org: str = "amsterdam", user: str = "fg.amsterdam") -> dict[str, str]:
    return gw.headers(org, "privacy_officer", None, user=user)


def read(
    gw: Gateway, org: str, role: str, purpose: str, city_pseudonym: str, city: str = "amsterdam", **extra: str
) -> int:
    pseudonym = gw.pseudonym_for(org, city_pseudonym, city)
    response = gw.http.get(f"/v1/participants/{pseudonym}", headers=gw.headers(org, role, purpose, **extra))
    return response.status_code


def entries(gw: Gateway, headers: dict[str, str] | None = None, **params: Any) -> Any:
    response = gw.http.get("/v1/officer/entries", params=params, headers=headers or officer(gw))
    assert response.status_code == 200, response.text
    return response.json()


def stored(gw: Gateway, seq: int) -> dict[str, Any]:
    with gw.container.db.read.connect() as conn:
        text = conn.execute(select(audit_entries.c.entry).where(audit_entries.c.seq == seq)).scalar_one()
    entry: dict[str, Any] = orjson.loads(text)
    return entry


@pytest.fixture
def traffic(gateway: Gateway) -> dict[str, str]:
    """Amsterdam and Rotterdam participants, read by several organisations; some denials."""
    ams = gateway.register("amsterdam")
    rdam = gateway.register("rotterdam")
    assert read(gateway, "ind", "ind_officer", "lso_case_discussion", ams) == 200
    assert read(gateway, "ind", "ind_officer", "lso_case_discussion", rdam, "rotterdam") == 200
    assert read(gateway, "ngo-opvang-amsterdam", "counsellor", "shelter_counselling", ams) == 200
    assert read(gateway, "ngo-opvang-amsterdam", "counsellor", "police_screening", ams) == 403
    assert read(gateway, "rotterdam", "case_manager", "lso_case_discussion", ams) == 404
    return {"ams": ams, "rdam": rdam}


def test_a_counsellor_gets_403_and_the_refusal_is_logged(gateway: Gateway) -> None:
    headers = gateway.headers("ngo-opvang-amsterdam", "counsellor", None)
    response = gateway.http.get("/v1/officer/entries", headers=headers)
    assert response.status_code == 403
    problem = response.json()
    assert problem["code"] == "no_oversight_activity"
    entry = stored(gateway, problem["audit_seq"])
    assert (entry["event"], entry["decision"], entry["role"]) == ("audit.query", "deny", "counsellor")


@pytest.mark.parametrize(
    "path",
    ["/v1/officer/anomalies", "/v1/officer/ldv", "/v1/officer/entries/export", "/v1/officer/status"],
)
def test_every_officer_endpoint_refuses_other_roles(gateway: Gateway, path: str) -> None:
    response = gateway.http.get(path, headers=gateway.headers("amsterdam", "case_manager", None))
    assert response.status_code == 403


def test_a_token_whose_scope_lacks_the_role_is_refused(gateway: Gateway) -> None:
    headers = {
        "Authorization": f"Bearer {gateway.token('amsterdam', scope='case_manager')}",
        "Acting-User": "fg.amsterdam",
        "Acting-Role": "privacy_officer",
    }
    response = gateway.http.get("/v1/officer/entries", headers=headers)
    assert response.status_code == 403
    assert response.json()["code"] == "insufficient_scope"


def test_the_officer_api_needs_a_token(gateway: Gateway) -> None:
    response = gateway.http.get("/v1/officer/entries", headers={"Acting-User": "x", "Acting-Role": "privacy_officer"})
    assert response.status_code == 401


def test_a_city_officer_sees_other_organisations_entries_about_its_region(
    gateway: Gateway, traffic: dict[str, str]
) -> None:
    items = entries(gateway)["items"]
    exchange = [i for i in items if i["event"].startswith("exchange.")]
    orgs = {i["organisation"] for i in exchange}
    assert {"amsterdam", "ind", "ngo-opvang-amsterdam", "rotterdam"} <= orgs
    # IND's read of the Rotterdam participant is outside Amsterdam's scope; Rotterdam's intake too.
    assert not any(i["organisation"] == "rotterdam" and i["event"] == "exchange.register" for i in exchange)
    ind_reads = [i for i in exchange if i["organisation"] == "ind"]
    assert len(ind_reads) == 1
    assert ind_reads[0]["participant"] == traffic["ams"]  # Amsterdam's own pseudonym for the participant


def test_another_organisations_officer_sees_only_its_own_entries(gateway: Gateway, traffic: dict[str, str]) -> None:
    body = entries(gateway, officer(gateway, "ngo-opvang-amsterdam", "fg.opvang"))
    assert {i["organisation"] for i in body["items"]} == {"ngo-opvang-amsterdam"}
    assert body["scope"].endswith("only.")
    ngo_pseudonym = gateway.pseudonym_for("ngo-opvang-amsterdam", traffic["ams"])
    assert {i["participant"] for i in body["items"] if i["participant"]} == {ngo_pseudonym}


def test_an_officer_cannot_widen_her_scope_with_the_organisation_filter(
    gateway: Gateway, traffic: dict[str, str]
) -> None:
    body = entries(gateway, officer(gateway, "ngo-opvang-amsterdam", "fg.opvang"), organisation="ind")
    assert body["items"] == []
    rotterdam = entries(gateway, officer(gateway, "rotterdam", "fg.rotterdam"), organisation="ind")
    assert {i["participant"] for i in rotterdam["items"]} == {traffic["rdam"]}


def test_search_by_participant_uses_the_officers_own_pseudonym(gateway: Gateway, traffic: dict[str, str]) -> None:
    body = entries(gateway, participant=traffic["ams"])
    assert body["items"]
    assert {i["participant"] for i in body["items"]} == {traffic["ams"]}
    ind_pseudonym = gateway.pseudonym_for("ind", traffic["ams"])
    assert entries(gateway, participant=ind_pseudonym)["items"] == []


def test_search_filters_by_organisation_purpose_decision_and_event(gateway: Gateway, traffic: dict[str, str]) -> None:
    denied = entries(gateway, decision="deny", event="exchange.read")["items"]
    assert {(i["organisation"], i["reason"]) for i in denied} == {
        ("ngo-opvang-amsterdam", "no_rule_for_purpose"),
        ("rotterdam", "participant_outside_covenant_region"),
    }
    lso = entries(gateway, purpose="lso_case_discussion", organisation="ind")["items"]
    assert [i["rule_ids"] for i in lso] == [["lso-ind-read"]]
    assert entries(gateway, reason="no_rule_for_purpose")["items"][0]["purpose"] == "police_screening"


def test_search_by_period_uses_the_recorded_time(gateway: Gateway, traffic: dict[str, str]) -> None:
    assert entries(gateway, since="2024-11-15T09:00:00Z", event="exchange.read")["items"]
    assert entries(gateway, since="2024-11-15T09:00:01Z", event="exchange.read")["items"] == []
    assert entries(gateway, until="2024-11-15T09:00:00Z", event="exchange.read")["items"] == []


def test_a_time_without_offset_is_refused(gateway: Gateway) -> None:
    response = gateway.http.get(
        "/v1/officer/entries", params={"since": "2024-11-15T09:00:00"}, headers=officer(gateway)
    )
    assert response.status_code == 422


def test_paging_walks_every_entry_once_newest_first(gateway: Gateway, traffic: dict[str, str]) -> None:
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, "event": "exchange.read"}
        if cursor:
            params["cursor"] = cursor
        body = entries(gateway, **params)
        seen += [i["seq"] for i in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(seen, reverse=True)
    assert len(seen) == len(set(seen)) == 4


def test_every_officer_access_is_itself_logged(gateway: Gateway, traffic: dict[str, str]) -> None:
    headers = officer(gateway, user="fg.logged")
    calls = [
        ("/v1/officer/entries", {"participant": traffic["ams"]}),
        ("/v1/officer/entries/export", {"format": "csv"}),
        ("/v1/officer/anomalies", {}),
        ("/v1/officer/ldv", {}),
        (f"/v1/officer/participants/{traffic['ams']}/access-report", {}),
    ]
    seqs = []
    for path, params in calls:
        response = gateway.http.get(path, params=params, headers=headers)
        assert response.status_code == 200, (path, response.text)
        seqs.append(int(response.headers.get("audit-seq") or response.json()["audit"]["seq"]))
    logged = [stored(gateway, s) for s in seqs]
    assert [e["event"] for e in logged] == ["audit.query"] * 4 + ["audit.subject_access"]
    assert {e["acting_user"] for e in logged} == {"fg.logged"}
    assert {e["decision"] for e in logged} == {"permit"}
    ref = gateway.container.store.resolve("amsterdam", traffic["ams"])
    assert ref is not None
    assert logged[0]["participant"] == ref.id
    assert logged[0]["query"]["participant"] is True
    assert [e.get("view") for e in logged[:4]] == ["search", "export", "anomalies", "ldv"]


def test_the_officers_own_queries_show_up_in_her_search(gateway: Gateway) -> None:
    first = entries(gateway)
    again = entries(gateway, event="audit.query")
    assert first["audit"]["seq"] in [i["seq"] for i in again["items"]]


def test_csv_export_holds_every_matching_entry_and_neutralises_formulas(
    gateway: Gateway, traffic: dict[str, str]
) -> None:
    p = gateway.register("amsterdam")
    headers = gateway.headers("amsterdam", "case_manager", "lso_case_discussion", user="@sum.calc")
    gateway.http.get(f"/v1/participants/{p}", headers=headers)
    response = gateway.http.get(
        "/v1/officer/entries/export", params={"format": "csv", "event": "exchange.read"}, headers=officer(gateway)
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 5
    assert {r["organisation_name"] for r in rows} >= {"Immigratie- en Naturalisatiedienst (IND)", "Gemeente Rotterdam"}
    assert "'@sum.calc" in {r["acting_user"] for r in rows}
    ind = next(r for r in rows if r["organisation"] == "ind")
    assert ind["participant"] == traffic["ams"]
    assert ind["categories"].split(";") == sorted(ind["categories"].split(";"))
    assert "Synthetisch" not in response.text


def test_json_export_holds_the_same_entries_as_the_search(gateway: Gateway, traffic: dict[str, str]) -> None:
    response = gateway.http.get(
        "/v1/officer/entries/export", params={"format": "json", "event": "exchange.read"}, headers=officer(gateway)
    )
    body = response.json()
    assert body["count"] == len(body["items"]) == 4
    searched = entries(gateway, event="exchange.read")["items"]
    assert [i["seq"] for i in body["items"]] == [i["seq"] for i in searched]
    assert body["items"][0].keys() == searched[0].keys()
    assert stored(gateway, body["audit"]["seq"])["results"] == 4


def test_the_status_endpoint_reports_the_verified_log(gateway: Gateway, traffic: dict[str, str]) -> None:
    response = gateway.http.get("/v1/officer/status", headers=officer(gateway))
    assert response.status_code == 200
    body = response.json()
    assert body["verified"] is True
    assert body["entries"] >= 6
    assert 0 <= body["indexed_through"] <= body["entries"]  # how far the search index has caught up
