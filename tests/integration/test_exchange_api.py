"""The exchange API over real HTTP, against SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from tests.conftest import AMS, Gateway

PROBLEM = "application/problem+json"


def read(gw: Gateway, org: str, role: str, purpose: str | None, pseudonym: str, **params: str):  # type: ignore[no-untyped-def]
    return gw.http.get(f"/v1/participants/{pseudonym}", headers=gw.headers(org, role, purpose), params=params)


def test_a_city_case_manager_reads_what_the_lso_purpose_permits(gateway: Gateway) -> None:
    p = gateway.register()
    response = read(gateway, "amsterdam", "case_manager", "lso_case_discussion", p)
    assert response.status_code == 200
    body = response.json()
    assert body["participant"] == p
    assert body["records"]["identity"]["fields"]["family_name"] == "Synthetisch-001"
    assert "v_number" not in body["records"]["identity"]["fields"]
    assert body["audit"]["rule_ids"] == ["lso-city-read"]
    assert body["audit"]["policy_version"] == gateway.container.policy.version


def test_the_same_participant_is_cut_down_for_another_purpose(gateway: Gateway) -> None:
    p = gateway.register()
    full = read(gateway, "amsterdam", "case_manager", "lso_case_discussion", p).json()["records"]
    cut = read(gateway, "amsterdam", "case_manager", "shelter_counselling", p).json()["records"]
    assert set(cut["case_plan"]["fields"]) == {"phase"}
    assert set(full["case_plan"]["fields"]) > set(cut["case_plan"]["fields"])
    assert "birth_date" in cut["identity"]["fields"]
    assert "nationality" in full["identity"]["fields"]
    assert "nationality" not in cut["identity"]["fields"]


def test_the_v_number_is_released_only_where_a_rule_names_it(gateway: Gateway) -> None:
    p = gateway.register()
    intake = read(gateway, "amsterdam", "intake_officer", "intake", p).json()["records"]["identity"]["fields"]
    assert intake["v_number"] == "TEST-V-00001"
    ngo = gateway.pseudonym_for("ngo-opvang-amsterdam", p)
    fields = read(gateway, "ngo-opvang-amsterdam", "counsellor", "shelter_counselling", ngo).json()
    assert "v_number" not in fields["records"]["identity"]["fields"]


def test_a_purpose_without_a_rule_for_the_caller_is_denied_and_logged(gateway: Gateway) -> None:
    p = gateway.pseudonym_for("ngo-opvang-amsterdam", gateway.register())
    response = read(gateway, "ngo-opvang-amsterdam", "counsellor", "police_screening", p)
    assert response.status_code == 403
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["code"] == "no_rule_for_purpose"
    assert problem["status"] == 403
    assert "records" not in problem
    assert "Synthetisch" not in response.text
    assert problem["audit_seq"] >= 1


@pytest.mark.parametrize(("purpose", "code"), [(None, "purpose_missing"), ("curiosity", "unknown_purpose")])
def test_a_request_without_a_known_purpose_is_refused_with_400(
    gateway: Gateway, purpose: str | None, code: str
) -> None:
    p = gateway.register()
    response = read(gateway, "amsterdam", "case_manager", purpose, p)
    assert response.status_code == 400
    assert response.json()["code"] == code


def test_a_participant_of_another_region_is_not_found_for_a_city(gateway: Gateway) -> None:
    p = gateway.pseudonym_for("rotterdam", gateway.register("amsterdam"))
    response = read(gateway, "rotterdam", "case_manager", "lso_case_discussion", p)
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_an_unknown_pseudonym_is_not_found_and_logged(gateway: Gateway) -> None:
    response = read(gateway, "amsterdam", "case_manager", "lso_case_discussion", "p" + "a" * 26)
    assert response.status_code == 404
    assert response.json()["audit_seq"] >= 1


def test_a_role_the_organisation_does_not_have_is_denied(gateway: Gateway) -> None:
    p = gateway.register()
    response = read(gateway, "amsterdam", "screening_officer", "lso_case_discussion", p)
    assert response.status_code == 403
    assert response.json()["code"] == "role_not_allowed"


def test_the_covenant_end_is_enforced_to_the_second(gateway: Gateway) -> None:
    p = gateway.register()
    ind = gateway.pseudonym_for("ind", p)
    gateway.clock.set(datetime(2024, 12, 31, 23, 59, 59, tzinfo=AMS))
    assert read(gateway, "ind", "ind_officer", "identity_nationality", ind).status_code == 200
    assert read(gateway, "amsterdam", "case_manager", "lso_case_discussion", p).status_code == 200
    gateway.clock.set(datetime(2025, 1, 1, 0, 0, 0, tzinfo=AMS))
    denied = read(gateway, "ind", "ind_officer", "identity_nationality", ind)
    assert denied.status_code == 403
    assert denied.json()["code"] == "no_covenant_in_force"
    assert read(gateway, "amsterdam", "case_manager", "lso_case_discussion", p).status_code == 403


def test_the_local_successor_covenant_serves_its_own_parties_only(gateway: Gateway) -> None:
    p = gateway.register("utrecht")
    gateway.clock.set(datetime(2025, 3, 1, 12, 0, tzinfo=AMS))
    assert read(gateway, "utrecht", "case_manager", "shelter_counselling", p).status_code == 200
    ind = gateway.pseudonym_for("ind", p, city="utrecht")
    assert read(gateway, "ind", "ind_officer", "identity_nationality", ind).status_code == 403
    lso = read(gateway, "utrecht", "case_manager", "lso_case_discussion", p).json()
    assert "screening" not in lso["records"]


def test_only_the_source_of_a_category_may_write_it(gateway: Gateway) -> None:
    p = gateway.register()
    ind = gateway.pseudonym_for("ind", p)
    headers = gateway.headers("ind", "ind_officer", "identity_nationality")
    ok = gateway.http.put(
        f"/v1/participants/{ind}/records/immigration_procedure",
        json={"fields": {"procedure_status": "pending"}},
        headers=headers,
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["versions"] == {"immigration_procedure": 1}
    city = gateway.http.put(
        f"/v1/participants/{p}/records/immigration_procedure",
        json={"fields": {"procedure_status": "granted"}},
        headers=gateway.headers("amsterdam", "case_manager", "identity_nationality"),
    )
    assert city.status_code == 403


def test_a_write_merges_into_a_new_version(gateway: Gateway) -> None:
    p = gateway.register()
    headers = gateway.headers("amsterdam", "case_manager", "intake")
    first = gateway.http.put(
        f"/v1/participants/{p}/records/case_plan", json={"fields": {"phase": "opvangfase"}}, headers=headers
    )
    assert first.json()["versions"] == {"case_plan": 2}
    fields = read(gateway, "amsterdam", "case_manager", "lso_case_discussion", p).json()["records"]["case_plan"]
    assert fields["fields"]["phase"] == "opvangfase"
    assert fields["fields"]["perspective"] == "undetermined"
    assert fields["version"] == 2


def test_a_write_of_an_unknown_field_is_rejected_with_422(gateway: Gateway) -> None:
    p = gateway.register()
    response = gateway.http.put(
        f"/v1/participants/{p}/records/case_plan",
        json={"fields": {"colour": "blue"}},
        headers=gateway.headers("amsterdam", "case_manager", "intake"),
    )
    assert response.status_code == 422
    assert response.json()["code"] == "unknown_field"
    assert "blue" not in response.text


def test_each_organisation_sees_its_own_stable_pseudonym(gateway: Gateway) -> None:
    p = gateway.register()
    a = gateway.pseudonym_for("ngo-opvang-amsterdam", p)
    b = gateway.pseudonym_for("ngo-terugkeer", p)
    assert len({p, a, b}) == 3
    again = read(gateway, "ngo-opvang-amsterdam", "counsellor", "shelter_counselling", a).json()
    assert again["participant"] == a


def test_listing_shows_only_participants_in_the_callers_regions(gateway: Gateway) -> None:
    mine = {gateway.register("amsterdam") for _ in range(3)}
    gateway.register("rotterdam")
    response = gateway.http.get(
        "/v1/participants", headers=gateway.headers("amsterdam", "case_manager", "lso_case_discussion")
    )
    assert response.status_code == 200
    listed = {item["participant"] for item in response.json()["items"]}
    assert listed == mine


def test_listing_pages_with_a_cursor(gateway: Gateway) -> None:
    mine = {gateway.register("amsterdam") for _ in range(3)}
    headers = gateway.headers("amsterdam", "case_manager", "lso_case_discussion")
    first = gateway.http.get("/v1/participants", params={"limit": 2}, headers=headers).json()
    second = gateway.http.get(
        "/v1/participants", params={"limit": 2, "after": first["next_after"]}, headers=headers
    ).json()
    assert {i["participant"] for i in first["items"] + second["items"]} == mine
    assert second["next_after"] is None


def test_the_callers_trace_is_continued_and_returned(gateway: Gateway) -> None:
    p = gateway.register()
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    headers = gateway.headers(
        "amsterdam", "case_manager", "lso_case_discussion", traceparent=f"00-{trace}-00f067aa0ba902b7-01"
    )
    response = gateway.http.get(f"/v1/participants/{p}", headers=headers)
    assert response.headers["traceparent"].startswith(f"00-{trace}-")
    assert not response.headers["traceparent"].endswith("00f067aa0ba902b7-01")


@pytest.mark.parametrize("header", ["Acting-User", "Acting-Role"])
def test_the_acting_user_and_role_are_required(gateway: Gateway, header: str) -> None:
    p = gateway.register()
    headers = gateway.headers("amsterdam", "case_manager", "lso_case_discussion")
    del headers[header]
    response = gateway.http.get(f"/v1/participants/{p}", headers=headers)
    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM


def test_no_participant_data_without_a_token(gateway: Gateway) -> None:
    p = gateway.register()
    response = gateway.http.get(f"/v1/participants/{p}", headers={"Processing-Purpose": "lso_case_discussion"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.headers["content-type"] == PROBLEM


def test_an_expired_token_is_refused_even_if_it_verified_before(gateway: Gateway) -> None:
    p = gateway.register()
    headers = gateway.headers("amsterdam", "case_manager", "lso_case_discussion")
    assert gateway.http.get(f"/v1/participants/{p}", headers=headers).status_code == 200
    gateway.clock.advance(timedelta(hours=2))
    assert gateway.http.get(f"/v1/participants/{p}", headers=headers).status_code == 401


def test_the_openapi_document_describes_the_purpose_header(gateway: Gateway) -> None:
    spec = gateway.http.get("/openapi.json").json()
    params = spec["paths"]["/v1/participants/{pseudonym}"]["get"]["parameters"]
    assert "Processing-Purpose" in {p["name"] for p in params}


def test_a_signed_jwt_that_is_not_an_access_token_is_refused(gateway: Gateway) -> None:
    p = gateway.register()
    gateway.minter.now = gateway.clock.timestamp()
    id_token_like = gateway.minter.token("amsterdam", header={"typ": "JWT"})
    headers = gateway.headers("amsterdam", "case_manager", "lso_case_discussion")
    headers["Authorization"] = f"Bearer {id_token_like}"
    assert gateway.http.get(f"/v1/participants/{p}", headers=headers).status_code == 401
