"""Logboek Dataverwerkingen export: one record per data subject, encrypted ids, foreign operations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from gateway import cli
from gateway.audit.ldv import SUBJECT_ID_TYPE, SubjectIdCipher
from gateway.crypto.keys import LDV_SUBJECT_FILE, load_secret_file
from gateway.store.tables import audit_entries
from tests.conftest import Gateway

PARTNER_SPAN = "00f067aa0ba902b7"
PARTNER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def ldv(gw: Gateway, org: str = "amsterdam") -> list[dict[str, Any]]:
    response = gw.http.get("/v1/officer/ldv", headers=gw.headers(org, "privacy_officer", None))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    return [orjson.loads(line) for line in response.text.splitlines()]


def cipher(gw: Gateway) -> SubjectIdCipher:
    return SubjectIdCipher(load_secret_file(gw.container.settings.key_dir, LDV_SUBJECT_FILE, 64))


def internal_id(gw: Gateway, city_pseudonym: str) -> str:
    ref = gw.container.store.resolve("amsterdam", city_pseudonym)
    assert ref is not None
    return ref.id


@pytest.fixture
def listed(gateway: Gateway) -> list[str]:
    """Three Amsterdam participants, listed once by the shelter NGO."""
    people = [gateway.register("amsterdam") for _ in range(3)]
    headers = gateway.headers("ngo-opvang-amsterdam", "counsellor", "shelter_counselling")
    response = gateway.http.get("/v1/participants", headers=headers)
    assert response.status_code == 200
    assert len(response.json()["items"]) == 3
    return people


def test_a_listing_of_three_participants_gives_three_records_with_one_trace(
    gateway: Gateway, listed: list[str]
) -> None:
    records = [r for r in ldv(gateway) if r["name"] == "exchange.list"]
    assert len(records) == 3
    assert len({(r["trace_id"], r["span_id"]) for r in records}) == 1
    subjects = {cipher(gateway).decrypt(r["attributes"]["dpl.core.data_subject_id"], "amsterdam") for r in records}
    assert subjects == {internal_id(gateway, p) for p in listed}


def test_the_subject_id_is_encrypted_deterministically_and_typed(gateway: Gateway, listed: list[str]) -> None:
    records = ldv(gateway)
    pid = internal_id(gateway, listed[0])
    values = {
        r["attributes"]["dpl.core.data_subject_id"]
        for r in records
        if "dpl.core.data_subject_id" in r["attributes"]
        and cipher(gateway).decrypt(r["attributes"]["dpl.core.data_subject_id"], "amsterdam") == pid
    }
    assert len(values) == 1  # the registration and the listing name the same person the same way
    (value,) = values
    assert value != pid
    assert pid not in orjson.dumps(records).decode()
    for pseudonym in listed:
        assert pseudonym not in orjson.dumps(records).decode()
    assert {r["attributes"].get("dpl.core.data_subject_id_type") for r in records} <= {SUBJECT_ID_TYPE, None}


def test_a_subject_id_from_another_key_does_not_decrypt(gateway: Gateway, listed: list[str]) -> None:
    value = next(r for r in ldv(gateway) if r["name"] == "exchange.list")["attributes"]["dpl.core.data_subject_id"]
    with pytest.raises(ValueError, match="not a subject id"):
        SubjectIdCipher(bytes(64)).decrypt(value, "amsterdam")


def subject_ids(records: list[dict[str, Any]]) -> list[str]:
    key = "dpl.core.data_subject_id"
    return [r["attributes"][key] for r in records if key in r["attributes"]]


def test_two_organisations_get_unrelated_subject_ids_for_the_same_participant(gateway: Gateway) -> None:
    p = gateway.register("amsterdam")
    ind = gateway.pseudonym_for("ind", p)
    assert gateway.http.get(
        f"/v1/participants/{ind}", headers=gateway.headers("ind", "ind_officer", "lso_case_discussion")
    ).is_success
    pid = internal_id(gateway, p)
    city = set(subject_ids(ldv(gateway, "amsterdam")))
    national = set(subject_ids(ldv(gateway, "ind")))
    assert len(city) == 1
    assert len(national) == 1
    assert city.isdisjoint(national)
    assert cipher(gateway).decrypt(city.pop(), "amsterdam") == pid
    assert cipher(gateway).decrypt(national.pop(), "ind") == pid


def test_one_organisations_repeated_exports_name_a_participant_alike(gateway: Gateway, listed: list[str]) -> None:
    first = subject_ids(ldv(gateway))
    second = subject_ids(ldv(gateway))
    assert len(set(first)) == 3
    assert set(first) == set(second)


def test_a_subject_id_does_not_decrypt_for_another_recipient(gateway: Gateway, listed: list[str]) -> None:
    value = subject_ids(ldv(gateway))[0]
    with pytest.raises(ValueError, match="not a subject id"):
        cipher(gateway).decrypt(value, "rotterdam")


def test_records_have_the_ldv_shape(gateway: Gateway, listed: list[str]) -> None:
    for record in ldv(gateway):
        assert set(record) >= {"trace_id", "span_id", "parent_span_id", "status_code", "name", "start_time", "end_time"}
        assert len(record["trace_id"]) == 32
        assert len(record["span_id"]) == 16
        assert record["start_time"].endswith("Z")
        assert record["status_code"] in ("STATUS_CODE_OK", "STATUS_CODE_ERROR")
        assert record["resource"]["attributes"]["service.name"] == "lvv-exchange-gateway"
    registration = next(r for r in ldv(gateway) if r["name"] == "exchange.register")
    assert registration["attributes"]["dpl.core.processing_activity_id"] == "urn:nl:lvv-gateway:activity:intake"


def test_foreign_operation_is_present_exactly_when_the_partner_sent_a_traceparent(gateway: Gateway) -> None:
    p = gateway.register("amsterdam")
    ind = gateway.pseudonym_for("ind", p)
    traced = gateway.headers(
        "ind", "ind_officer", "lso_case_discussion", traceparent=f"00-{PARTNER_TRACE}-{PARTNER_SPAN}-01"
    )
    assert gateway.http.get(f"/v1/participants/{ind}", headers=traced).status_code == 200
    untraced = gateway.headers("ind", "ind_officer", "lso_case_discussion")
    assert gateway.http.get(f"/v1/participants/{ind}", headers=untraced).status_code == 200
    reads = [r for r in ldv(gateway) if r["name"] == "exchange.read"]
    assert len(reads) == 2
    with_parent = [r for r in reads if "foreign_operation" in r]
    assert len(with_parent) == 1
    foreign = with_parent[0]["foreign_operation"]
    assert foreign == {"trace_id": PARTNER_TRACE, "span_id": PARTNER_SPAN, "entity": "urn:nl:oin:00000099000000000011"}
    assert with_parent[0]["trace_id"] == PARTNER_TRACE
    assert with_parent[0]["parent_span_id"] == PARTNER_SPAN
    (without,) = [r for r in reads if "foreign_operation" not in r]
    assert without["parent_span_id"] is None


def test_a_denied_request_is_exported_with_error_status(gateway: Gateway) -> None:
    p = gateway.pseudonym_for("ngo-opvang-amsterdam", gateway.register("amsterdam"))
    headers = gateway.headers("ngo-opvang-amsterdam", "counsellor", "police_screening")
    assert gateway.http.get(f"/v1/participants/{p}", headers=headers).status_code == 403
    (denied,) = [r for r in ldv(gateway) if r["name"] == "exchange.read"]
    assert denied["status_code"] == "STATUS_CODE_ERROR"
    assert denied["attributes"]["dpl.core.processing_activity_id"] == "urn:nl:lvv-gateway:activity:police_screening"


def test_an_ngo_officer_exports_only_its_own_organisations_processing(gateway: Gateway, listed: list[str]) -> None:
    records = ldv(gateway, "ngo-opvang-amsterdam")
    assert {r["name"] for r in records} == {"exchange.list", "audit.query"}  # its listing, and this export itself


def test_the_cli_exports_the_whole_log_and_logs_the_export(
    gateway: Gateway,
    listed: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = gateway.container.settings
    monkeypatch.chdir(tmp_path)  # no var/gateway.env here
    monkeypatch.setenv("GATEWAY_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("GATEWAY_CONFIG_DIR", str(settings.config_dir))
    monkeypatch.setenv("GATEWAY_KEY_DIR", str(settings.key_dir))
    monkeypatch.setenv("GATEWAY_TOKEN_JWKS_FILE", str(settings.jwks_path))
    out = tmp_path / "ldv.jsonl"
    assert cli.main(["audit", "ldv-export", "--out", str(out)]) == 0
    records = [orjson.loads(line) for line in out.read_text().splitlines()]
    # The export's own audit entry is committed before the first line is written, so it is in the export.
    assert [r["name"] for r in records] == ["exchange.register"] * 3 + ["exchange.list"] * 3 + ["audit.ldv_export"]
    assert "audit entry" in capsys.readouterr().out
    with gateway.container.db.read.connect() as conn:
        last = orjson.loads(conn.execute(select(audit_entries.c.entry).order_by(audit_entries.c.seq.desc())).first()[0])
    assert (last["event"], last["organisation"], last["format"]) == (
        "audit.ldv_export",
        "gateway-operator",
        "ldv-jsonl",
    )
