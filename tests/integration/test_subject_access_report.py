"""The GDPR art. 15 report for a participant accessed by three organisations under two purposes.

The accesses are made through the real exchange API; the report is fetched through the officer API
in JSON, HTML and PDF, against SQLite and PostgreSQL.
"""

from __future__ import annotations

import io
import re
from datetime import datetime
from typing import Any

import orjson
import pytest
from pypdf import PdfReader
from sqlalchemy import select

from gateway.store.tables import audit_entries
from tests.conftest import Gateway
from tests.support.pdf import cut_words, pdf_lines, word_spacing

IND = "Immigratie- en Naturalisatiedienst (IND)"
DTV = "Dienst Terugkeer en Vertrek (DT&V)"
SHELTER = "Stichting Voorbeeld Opvang Amsterdam (fictief)"
LSO = "Casusbespreking in het Lokaal Stuurgroep Overleg (LSO)"
SHELTER_PURPOSE = "Opvang en begeleiding"


def officer(gw: Gateway, org: str = "amsterdam", user: str = "fg.amsterdam") -> dict[str, str]:
    return gw.headers(org, "privacy_officer", None, user=user)


def read(gw: Gateway, org: str, role: str, purpose: str, city_pseudonym: str) -> int:
    pseudonym = gw.pseudonym_for(org, city_pseudonym)
    response = gw.http.get(f"/v1/participants/{pseudonym}", headers=gw.headers(org, role, purpose))
    return response.status_code


@pytest.fixture
def accessed(gateway: Gateway) -> str:
    """A participant read by IND and DT&V for the LSO and by the shelter NGO for counselling; one denial."""
    p = gateway.register("amsterdam")
    assert read(gateway, "ind", "ind_officer", "lso_case_discussion", p) == 200
    assert read(gateway, "dtv", "return_officer", "lso_case_discussion", p) == 200
    assert read(gateway, "ngo-opvang-amsterdam", "counsellor", "shelter_counselling", p) == 200
    assert read(gateway, "ngo-opvang-amsterdam", "counsellor", "police_screening", p) == 403
    return p


def report(gw: Gateway, pseudonym: str, fmt: str, headers: dict[str, str] | None = None, lang: str = "nl") -> Any:
    return gw.http.get(
        f"/v1/officer/participants/{pseudonym}/access-report",
        params={"format": fmt, "lang": lang},
        headers=headers or officer(gw),
    )


def test_the_json_report_names_each_recipient_purpose_category_and_legal_basis(gateway: Gateway, accessed: str) -> None:
    response = report(gateway, accessed, "json")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["participant_reference"] == accessed
    assert body["complete"] is True
    rows = {(r["organisation_name"], r["purpose_name"]): r for r in body["recipients"]}
    assert {(IND, LSO), (DTV, LSO), (SHELTER, SHELTER_PURPOSE)} <= set(rows)
    assert {purpose for _, purpose in rows if _ != "Gemeente Amsterdam"} == {LSO, SHELTER_PURPOSE}
    assert "Identiteit" in rows[(IND, LSO)]["categories"]
    assert "Identiteit" in rows[(SHELTER, SHELTER_PURPOSE)]["categories"]
    terms = {b["term"] for b in rows[(IND, LSO)]["legal_bases"]}
    assert "eu-gdpr:A6-1-e" in terms
    assert all(b["text"] for b in rows[(IND, LSO)]["legal_bases"])
    released = [d for d in body["disclosures"] if d["organisation_name"] in (IND, DTV, SHELTER)]
    assert len(released) == 3
    assert all(d["time"].startswith("2024-11-15T09:00:00") for d in released)


def test_a_denied_attempt_is_not_reported_as_a_disclosure(gateway: Gateway, accessed: str) -> None:
    body = report(gateway, accessed, "json").json()
    purposes = {d["purpose"] for d in body["disclosures"]}
    assert "police_screening" not in purposes


def test_the_report_gives_retention_per_category_with_legal_source_and_suggestion_label(
    gateway: Gateway, accessed: str
) -> None:
    body = report(gateway, accessed, "json").json()
    retention = {r["applies_to"]: r for r in body["retention"]}
    assert retention["identity"]["period"] == "destroyed 6 months after the covenant ends"
    assert retention["identity"]["duration"] == "P6M"
    assert retention["identity"]["suggestion"] is True
    assert "Convenant LVV" in retention["identity"]["legal_source"]
    assert retention["audit_log"]["period"] == "destroyed 20 years after it was recorded"


def test_the_report_names_the_sources_of_each_category(gateway: Gateway, accessed: str) -> None:
    body = report(gateway, accessed, "json").json()
    sources = {s["category"]: s for s in body["sources"]}
    assert sources["identity"]["provided_by"] == ["Gemeente Amsterdam"]
    assert sources["identity"]["sources_by_config"] == ["the municipality (gemeente) of the participant's region"]
    assert sources["identity"]["last_written"].startswith("2024-11-15")


def test_the_report_never_holds_pseudonyms_of_other_organisations_or_record_contents(
    gateway: Gateway, accessed: str
) -> None:
    text = report(gateway, accessed, "json").text
    for org in ("ind", "dtv", "ngo-opvang-amsterdam", "rotterdam"):
        assert gateway.pseudonym_for(org, accessed) not in text
    ref = gateway.container.store.resolve("amsterdam", accessed)
    assert ref is not None
    assert ref.id not in text
    for content in ("Synthetisch-001", "TEST-V-00001", "Testopvang", "+31 6"):
        assert content not in text


def test_the_html_report_shows_the_same_facts(gateway: Gateway, accessed: str) -> None:
    response = report(gateway, accessed, "html")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text.replace("&amp;", "&")
    for fact in (
        IND,
        DTV,
        SHELTER,
        LSO,
        SHELTER_PURPOSE,
        "AVG art. 6 lid 1 sub e",
        "Voorstel: een ontwerpkeuze, geen wet.",
    ):
        assert fact in html
    assert "eu-gdpr:" not in html  # legal bases as the article, not the DPV code
    assert "DT&V" not in response.text  # escaped, not raw


def _pdf_text(data: bytes) -> str:
    reader = PdfReader(io.BytesIO(data))
    return re.sub(r"\s+", " ", " ".join(page.extract_text() for page in reader.pages))


def test_the_pdf_report_holds_the_same_facts_as_the_json(gateway: Gateway, accessed: str) -> None:
    body = report(gateway, accessed, "json").json()
    response = report(gateway, accessed, "pdf")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    text = _pdf_text(response.content)
    assert "Overzicht bij inzageverzoek (AVG art. 15)" in text
    assert accessed in text
    for row in body["recipients"]:
        assert row["organisation_name"] in text
        assert row["purpose_name"] in text
    for line in body["retention"]:
        assert line["name"] in text or line["name"] == "Log of disclosures (audit log)"
    assert "Logboek van verstrekkingen (auditlog)" in text
    assert "vernietigd 6 maanden na afloop van het convenant" in text
    assert "Voorstel: een ontwerpkeuze, geen wet." in text
    assert "AVG art. 6 lid 1 sub e" in text
    assert "Synthetisch" not in text


def test_the_data_subject_can_have_the_report_in_english(gateway: Gateway, accessed: str) -> None:
    text = _pdf_text(report(gateway, accessed, "pdf", lang="en").content)
    assert "Subject access report (GDPR art. 15)" in text
    assert "destroyed 6 months after the covenant ends" in text
    assert "AVG art. 6 lid 1 sub e" in text
    html = report(gateway, accessed, "html", lang="en").text
    assert '<html lang="en">' in html
    assert "Who received your data, for which purpose, on which legal basis" in html


def test_the_pdf_report_is_ragged_right_cuts_no_word_and_is_dated_by_the_gateways_clock(
    gateway: Gateway, accessed: str
) -> None:
    body = report(gateway, accessed, "json").json()
    data = report(gateway, accessed, "pdf").content
    reader = PdfReader(io.BytesIO(data))
    assert cut_words(pdf_lines(data), orjson.dumps(body).decode()) == []
    assert word_spacing(data) == []  # ragged right: no justified line stretches its spaces
    generated = datetime.fromisoformat(body["generated_at"].replace("Z", "+00:00"))
    created = reader.metadata.creation_date
    assert created is not None
    assert abs((created - generated).total_seconds()) < 1  # the report's own moment, not the renderer's
    assert b"/Lang (nl)" in data


def test_issuing_a_report_is_itself_logged_with_the_participant(gateway: Gateway, accessed: str) -> None:
    response = report(gateway, accessed, "json")
    seq = response.json()["audit_seq"]
    with gateway.container.db.read.connect() as conn:
        row = conn.execute(select(audit_entries.c.entry).where(audit_entries.c.seq == seq)).scalar_one()
    entry = orjson.loads(row)
    ref = gateway.container.store.resolve("amsterdam", accessed)
    assert ref is not None
    assert entry["event"] == "audit.subject_access"
    assert entry["decision"] == "permit"
    assert entry["participant"] == ref.id
    assert entry["acting_user"] == "fg.amsterdam"
    assert entry["role"] == "privacy_officer"
    assert entry["purpose"] == "subject_access_request"


def test_an_ngo_officers_report_covers_its_own_organisation_only(gateway: Gateway, accessed: str) -> None:
    headers = officer(gateway, "ngo-opvang-amsterdam", "fg.opvang")
    pseudonym = gateway.pseudonym_for("ngo-opvang-amsterdam", accessed)
    body = report(gateway, pseudonym, "json", headers).json()
    assert body["complete"] is False
    assert {r["organisation_name"] for r in body["recipients"]} == {SHELTER}
    assert "only" in body["scope"]


def test_a_report_for_a_pseudonym_the_organisation_does_not_know_is_404_and_logged(gateway: Gateway) -> None:
    response = report(gateway, "p" + "a" * 26, "json")
    assert response.status_code == 404
    seq = response.json()["audit_seq"]
    with gateway.container.db.read.connect() as conn:
        entry = orjson.loads(conn.execute(select(audit_entries.c.entry).where(audit_entries.c.seq == seq)).scalar_one())
    assert (entry["event"], entry["decision"], entry["reason"]) == (
        "audit.subject_access",
        "deny",
        "unknown_participant",
    )
