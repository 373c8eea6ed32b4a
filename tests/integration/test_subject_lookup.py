"""Finding the participant of an access request from what the requester gives (art. 15), inside the gateway.

The identifiers are matched against keyed digests written with the record; nothing identifying is kept
in clear for it, the lookup is its own audit entry without the values typed, and a participant outside
the officer's regions looks exactly like no match.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import orjson
import pytest
from sqlalchemy import delete, select, update

from gateway.store.tables import audit_entries, data_keys, subject_index
from tests.conftest import Gateway, synthetic_records
from tests.integration.test_officer_pages import sign_in

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def officer(gw: Gateway, org: str = "amsterdam") -> dict[str, str]:
    return gw.headers(org, "privacy_officer", None, user=f"fg.{org}")


def lookup(gw: Gateway, body: dict[str, str], org: str = "amsterdam") -> httpx.Response:
    return gw.http.post("/v1/officer/subject-lookup", json=body, headers=officer(gw, org))


def entry(gw: Gateway, seq: int) -> dict[str, object]:
    with gw.container.db.read.connect() as conn:
        text = conn.execute(select(audit_entries.c.entry).where(audit_entries.c.seq == seq)).scalar_one()
    value: dict[str, object] = orjson.loads(text)
    return value


def test_an_officer_finds_the_participant_by_v_number_or_by_name_and_date_of_birth(gateway: Gateway) -> None:
    p = gateway.register("amsterdam", synthetic_records(7))
    gateway.register("amsterdam", synthetic_records(8))
    by_number = lookup(gateway, {"v_number": " test-v 00007 "})  # spaces, case and dashes do not matter
    assert by_number.status_code == 200, by_number.text
    assert by_number.json()["pseudonyms"] == [p]
    assert by_number.json()["matched_by"] == ["v_number"]
    by_name = lookup(gateway, {"family_name": "SYNTHETISCH-007", "birth_date": "1990-01-01"})
    assert by_name.json()["pseudonyms"] == [p]
    both = lookup(gateway, {"v_number": "TEST-V-00007", "family_name": "Synthetisch-008", "birth_date": "1990-01-01"})
    assert both.json()["pseudonyms"] == []  # every identifier given must match the same participant


def test_a_participant_outside_the_officers_regions_looks_exactly_like_no_match(gateway: Gateway) -> None:
    gateway.register("amsterdam", synthetic_records(9))
    outside = lookup(gateway, {"v_number": "TEST-V-00009"}, org="rotterdam")
    unknown = lookup(gateway, {"v_number": "TEST-V-99999"}, org="rotterdam")
    assert outside.status_code == unknown.status_code == 200
    assert outside.json()["pseudonyms"] == unknown.json()["pseudonyms"] == []
    assert {k: v for k, v in outside.json().items() if k != "audit_seq"} == {
        k: v for k, v in unknown.json().items() if k != "audit_seq"
    }
    a, b = entry(gateway, outside.json()["audit_seq"]), entry(gateway, unknown.json()["audit_seq"])
    assert a["participant"] is None
    assert b["participant"] is None


def test_the_lookup_is_its_own_audit_entry_and_holds_nothing_typed(gateway: Gateway) -> None:
    p = gateway.register("amsterdam", synthetic_records(11))
    response = lookup(gateway, {"family_name": "Synthetisch-011", "birth_date": "1990-01-01"})
    logged = entry(gateway, response.json()["audit_seq"])
    assert logged["event"] == "audit.subject_lookup"
    assert logged["decision"] == "permit"
    assert logged["given"] == ["name_birth"]
    assert logged["results"] == 1
    assert logged["participant"] is not None
    assert gateway.pseudonym_for("amsterdam", p) == p
    text = orjson.dumps(logged).decode()
    for typed in ("Synthetisch", "1990-01-01", "TEST-V"):
        assert typed not in text
    with gateway.container.db.read.connect() as conn:
        stored = conn.execute(select(subject_index)).all()
    assert stored
    for row in stored:
        assert re.fullmatch(r"[0-9a-f]{64}", row.digest)  # a keyed digest, never the identifier


def test_a_lookup_needs_a_v_number_or_a_name_with_a_date_of_birth(gateway: Gateway) -> None:
    for body in ({}, {"family_name": "Synthetisch-001"}, {"birth_date": "1990-01-01"}, {"v_number": ""}):
        response = lookup(gateway, body)
        assert response.status_code == 422, body
        assert response.headers["content-type"].startswith("application/problem+json")
    assert lookup(gateway, {"v_number": "x", "ssn": "1"}).status_code == 422  # unknown fields are refused
    assert lookup(gateway, {"family_name": "X", "birth_date": "01-01-1990"}).status_code == 422  # ISO dates only
    nothing = lookup(gateway, {"v_number": " - "})  # normalises to nothing: no one matches, and it is logged
    assert nothing.status_code == 200
    assert nothing.json()["pseudonyms"] == []
    assert nothing.json()["matched_by"] == []


def test_only_a_privacy_officer_may_look_up_and_a_refusal_is_logged(gateway: Gateway) -> None:
    gateway.register("amsterdam", synthetic_records(12))
    headers = gateway.headers("amsterdam", "case_manager", None)
    response = gateway.http.post("/v1/officer/subject-lookup", json={"v_number": "TEST-V-00012"}, headers=headers)
    assert response.status_code == 403
    assert entry(gateway, int(response.json()["audit_seq"]))["event"] == "audit.subject_lookup"


@pytest.fixture
def browser(gateway: Gateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.url, timeout=10) as client:
        yield client


def test_the_officer_page_finds_the_participant_from_a_posted_form(gateway: Gateway, browser: httpx.Client) -> None:
    p = gateway.register("amsterdam", synthetic_records(13))
    sign_in(gateway, browser)
    form = browser.get("/officer/subject-lookup")
    assert form.status_code == 200
    match = CSRF.search(form.text)
    assert match
    found = browser.post("/officer/subject-lookup", data={"csrf": match[1], "v_number": "TEST-V-00013"})
    assert found.status_code == 200
    by_name = browser.post(
        "/officer/subject-lookup",
        data={"csrf": match[1], "family_name": "Synthetisch-013", "birth_date": "01-01-1990"},  # typed the Dutch way
    )
    assert f"/officer/subject-access?participant={p}" in by_name.text
    assert "1 deelnemer gevonden" in found.text
    assert f"/officer/subject-access?participant={p}" in found.text
    assert "TEST-V-00013" not in found.text  # not echoed back
    refused = browser.post("/officer/subject-lookup", data={"csrf": "forged", "v_number": "TEST-V-00013"})
    assert refused.status_code == 400


def test_without_its_key_the_lookup_says_it_is_not_set_up_rather_than_no_match(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gateway.container.store, "subject_index", None)  # as when subject-lookup.key is missing
    response = lookup(gateway, {"v_number": "TEST-V-00001"})
    assert response.status_code == 503
    assert response.json()["code"] == "lookup_unavailable"


def test_once_the_identity_is_crypto_shredded_the_participant_cannot_be_found(gateway: Gateway) -> None:
    gateway.register("amsterdam", synthetic_records(14))
    assert lookup(gateway, {"v_number": "TEST-V-00014"}).json()["pseudonyms"]
    with gateway.container.db.write.begin() as conn:  # what destroying the identity's data key leaves
        conn.execute(update(data_keys).where(data_keys.c.category == "identity").values(wrapped_key=None))
    assert lookup(gateway, {"v_number": "TEST-V-00014"}).json()["pseudonyms"] == []


def test_records_written_before_the_index_are_indexed_by_a_reindex(gateway: Gateway) -> None:
    p = gateway.register("amsterdam", synthetic_records(15))
    with gateway.container.db.write.begin() as conn:  # as a database from before migration 0010
        conn.execute(delete(subject_index))
    assert lookup(gateway, {"v_number": "TEST-V-00015"}).json()["pseudonyms"] == []
    assert gateway.container.store.reindex_subjects() == 1  # the identity record; the others give no digest
    assert lookup(gateway, {"v_number": "TEST-V-00015"}).json()["pseudonyms"] == [p]
    assert lookup(gateway, {"family_name": "Synthetisch-015", "birth_date": "1990-01-01"}).json()["pseudonyms"] == [p]
