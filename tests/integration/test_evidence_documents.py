"""Signed revocation reports and destruction records state the facts of a real covenant end and a real
retention run (on both databases), in JSON, HTML and PDF; the evidence API shows each party only its own."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from pypdf import PdfReader

from gateway.api.app import create_app
from gateway.clock import FixedClock
from gateway.container import build
from gateway.evidence.envelope import verify_bytes
from gateway.evidence.keys import EvidenceKey, parse_keys
from gateway.evidence.parts import EvidenceParts
from gateway.evidence.repository import StoredDocument
from gateway.evidence.service import EvidenceUnavailable
from gateway.lifecycle.events import Actor
from tests.conftest import AMS, IN_FORCE, Gateway, make_settings, synthetic_records
from tests.support.pdf import cut_words, pdf_lines, word_spacing
from tests.support.server import LiveServer
from tests.support.tokens import TokenMinter

AFTER_END = datetime(2025, 1, 1, 0, 0, 5, tzinfo=AMS)
AFTER_CONTACT_RETENTION = datetime(2025, 4, 2, 9, 0, tzinfo=AMS)  # contact: P3M after the covenant's end
APPEAL = "AWB 25/0001 (synthetic)"
AUTHORITY = "Besluit vernietiging LVV-gegevens 2025 (synthetic example)"


@dataclass
class Scenario:
    gw: Gateway
    parts: EvidenceParts
    held: str  # the participant under an appeal
    keys: list[EvidenceKey]

    def document(self, stored: StoredDocument) -> dict[str, Any]:
        result: dict[str, Any] = orjson.loads(stored.signed_json)["document"]
        return result


@pytest.fixture
def scenario(database_url: str, tmp_path: Path, minter: TokenMinter) -> Iterator[Scenario]:
    clock = FixedClock(IN_FORCE)
    settings = make_settings(
        database_url, tmp_path / "keys", minter, outbox_poll_seconds=0, covenant_end_notices=False,
        audit_checkpoint_interval_seconds=0, lifecycle_poll_seconds=0,
    )  # fmt: skip
    container = build(settings, clock)
    try:
        app = create_app(container=container)
        with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=60) as http:
            gw = Gateway(container, clock, minter, server.url, http)
            gw.register("amsterdam", synthetic_records(1))
            held = gw.register("amsterdam", synthetic_records(2))
            ref = container.store.resolve("amsterdam", held)
            assert ref is not None
            assert container.lifecycle is not None
            container.lifecycle.service.set_hold(
                Actor.jurist("amsterdam", "jurist.synthetic"), ref.id, "appeal", APPEAL
            )
            assert container.evidence is not None
            keys = parse_keys(http.get("/.well-known/evidence-keys.json").content)
            yield Scenario(gw, container.evidence, ref.id, keys)
    finally:
        container.close()


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def end_the_covenant(s: Scenario) -> None:
    s.gw.clock.set(AFTER_END)
    pseudonym = s.gw.container.store.pseudonym("ind", s.held)
    denied = s.gw.http.get(
        f"/v1/participants/{pseudonym}", headers=s.gw.headers("ind", "ind_officer", "lso_case_discussion")
    )
    assert denied.status_code in (403, 404)
    s.parts.notify_covenant_end("lvv-amsterdam")
    asyncio.run(s.parts.worker.deliver_due())


def test_no_revocation_report_is_issued_while_the_covenant_is_in_force(scenario: Scenario) -> None:
    with pytest.raises(EvidenceUnavailable, match="in force"):
        scenario.parts.service.issue_revocation_report("lvv-amsterdam")


def test_the_revocation_report_states_the_end_the_refusals_the_holds_and_the_checkpoint(scenario: Scenario) -> None:
    s = scenario
    container = s.gw.container
    public = {"keys": [s.gw.minter.ec.as_dict(private=False)]}
    container.auth.registry.register("avim-screening-synthetic", "avim", ("screening_officer",), jwks=public)
    end_the_covenant(s)
    assert container.lifecycle is not None
    assert container.lifecycle.covenant_end is not None
    # AVIM is party to no covenant in force any more, but its oversight aftercare runs: kept enabled.
    assert container.lifecycle.covenant_end.sweep() == []
    stored = s.parts.service.issue_revocation_report("lvv-amsterdam", requested_by="jurist.synthetic (amsterdam)")
    doc = s.document(stored)
    assert doc["covenant"]["id"] == "lvv-amsterdam"
    assert doc["end"]["kind"] == "ended"
    assert doc["end"]["moment"] == "2025-01-01T00:00:00+01:00"
    assert {p["organisation"] for p in doc["covenant"]["parties"]} >= {"amsterdam", "ind", "dtv", "avim"}
    attempts = doc["attempts_after_end"]
    assert attempts["total"] >= 1
    assert attempts["denied"] == attempts["total"]
    assert attempts["none_served_under_this_covenant"] is True
    assert attempts["entries"][0]["organisation"] == "ind"
    (hold,) = doc["legal_holds"]
    assert (hold["reason"], hold["case_reference"]) == ("appeal", APPEAL)
    assert "legal procedure only" in hold["why_kept"]
    audit = doc["audit"]
    assert audit["checkpoint_at_end"]["tree_size"] >= audit["last_entry_before_end"] > 0
    assert audit["checkpoint_at_end"]["signed_at"] >= "2024-12-31T23:00:00Z"
    assert len(doc["recipients_notified"]) == 8
    assert doc["clients_disabled"] == []  # disabled once the aftercare ended (test_lifecycle_covenant_end)
    assert doc["acknowledgements"]["acknowledged"] == []
    assert s.held not in stored.signed_json.decode()  # no participant identifier in evidence
    for data in (stored.signed_json, stored.html, stored.pdf):
        assert verify_bytes(data, s.keys).document_id == doc["id"]


def test_the_report_as_pdf_and_html_carries_the_same_facts(scenario: Scenario) -> None:
    s = scenario
    end_the_covenant(s)
    stored = s.parts.service.issue_revocation_report("lvv-amsterdam")
    text = pdf_text(stored.pdf)
    for fact in (
        "Intrekkingsrapport",
        "lvv-amsterdam",
        "2025-01-01T00:00:00+01:00",
        APPEAL,
        "Ontbrekende bevestigingen",
    ):
        assert fact in text, fact
    assert "tot en met 31 december 2024 23:59:59; beëindigd op 1 januari 2025 00:00" in text.replace("\n", " ")
    assert s.document(stored)["id"] in text
    assert list(PdfReader(io.BytesIO(stored.pdf)).attachments) == ["evidence.json"]
    html = stored.html.decode()
    assert APPEAL in html
    assert "Elke poging na het einde" in html
    assert '<html lang="nl">' in html


def assert_filed_properly(stored: StoredDocument, command: str, issued_at: str) -> None:
    """The verify command is whole on one line, no word is cut at a line end, and the PDF is dated as issued."""
    lines = pdf_lines(stored.pdf)
    assert command in lines, f"{command!r} is not whole on one line"
    assert cut_words(lines, stored.signed_json.decode()) == []
    assert word_spacing(stored.pdf) == []  # ragged right: no justified line stretches its spaces
    created = PdfReader(io.BytesIO(stored.pdf)).metadata.creation_date
    assert created is not None
    assert created == datetime.fromisoformat(issued_at.replace("Z", "+00:00"))


def test_the_pdfs_keep_the_verify_command_whole_cut_no_word_and_carry_the_issue_date(scenario: Scenario) -> None:
    s = scenario
    end_the_covenant(s)
    report = s.parts.service.issue_revocation_report("lvv-amsterdam")
    doc = s.document(report)
    assert_filed_properly(
        report, "gateway verify revocation-report-lvv-amsterdam-v1.pdf --keys evidence-keys.json", doc["issued_at"]
    )
    s.gw.clock.set(AFTER_CONTACT_RETENTION)
    lifecycle = s.gw.container.lifecycle
    assert lifecycle is not None
    outcome = lifecycle.retention.run(Actor.scheduler(), AUTHORITY)
    record = s.parts.service.issue_destruction_record(outcome.run_id)
    stem = f"destruction-record-{outcome.run_id}-v1.pdf"
    assert_filed_properly(record, f"gateway verify {stem} --keys evidence-keys.json", s.document(record)["issued_at"])


def test_a_later_report_is_a_new_version_and_the_first_stays_as_issued(scenario: Scenario) -> None:
    s = scenario
    end_the_covenant(s)
    first = s.parts.service.issue_revocation_report("lvv-amsterdam")
    second = s.parts.service.issue_revocation_report("lvv-amsterdam")
    assert (first.version, second.version) == (1, 2)
    assert first.id != second.id
    assert verify_bytes(first.signed_json, s.keys).document_id == first.id


def test_the_destruction_record_states_what_how_when_on_which_ground_and_by_whose_authority(scenario: Scenario) -> None:
    s = scenario
    end_the_covenant(s)
    s.gw.clock.set(AFTER_CONTACT_RETENTION)
    lifecycle = s.gw.container.lifecycle
    assert lifecycle is not None
    outcome = lifecycle.retention.run(Actor.scheduler(), AUTHORITY)
    assert outcome.keys_destroyed >= 1
    stored = s.parts.service.issue_destruction_record(outcome.run_id)
    doc = s.document(stored)
    assert doc["type"] == "destruction_record"
    assert doc["batch"]["authority"] == AUTHORITY
    assert doc["method"].startswith("crypto-shredding")
    contact = next(c for c in doc["categories"] if c["category"] == "contact")
    assert contact["records"] >= 1
    assert contact["participants"] == 1  # the participant under the appeal kept its data
    assert contact["ground"]["retention_rule"] == "contact-after-covenant"
    assert contact["ground"]["duration"] == "P3M"
    assert contact["ground"]["suggestion"] is True
    assert doc["period_covered"]["from"] is not None
    assert any(k["reason"] == "on_hold" for k in doc["kept"])
    assert doc["audit"]["checkpoint"]["tree_size"] >= doc["audit"]["last_entry"]
    text = pdf_text(stored.pdf)
    for fact in ("Vernietigingsverklaring", "Archiefbesluit 1995 art. 8", AUTHORITY, "contact-after-covenant"):
        assert fact in text.replace("\n", " "), fact
    html = stored.html.decode()
    names = {c.id: c.name for c in s.gw.container.policy.config.categories}
    kept = html.split("Bewaard, niet vernietigd, en waarom", 1)[1]
    for k in doc["kept"]:  # the kept categories by name, not only by id
        assert names[k["category"]] in kept
    for data in (stored.signed_json, stored.html, stored.pdf):
        assert verify_bytes(data, s.keys).document_type == "destruction_record"


def test_a_party_s_jurist_sees_and_downloads_its_covenant_s_report_and_others_do_not(scenario: Scenario) -> None:
    s = scenario
    end_the_covenant(s)
    issued = s.gw.http.post(
        "/v1/evidence/covenants/lvv-amsterdam/revocation-report", headers=s.gw.headers("amsterdam", "jurist", None)
    )
    assert issued.status_code == 201, issued.text
    doc_id = issued.json()["id"]
    listing = s.gw.http.get("/v1/evidence/documents", headers=s.gw.headers("amsterdam", "jurist", None)).json()
    assert [d["id"] for d in listing["items"]] == [doc_id]
    pdf = s.gw.http.get(f"/v1/evidence/documents/{doc_id}.pdf", headers=s.gw.headers("ind", "privacy_officer", None))
    assert pdf.status_code == 200
    assert pdf.headers["audit-seq"]
    assert verify_bytes(pdf.content, s.keys).document_id == doc_id

    rotterdam = s.gw.headers("rotterdam", "jurist", None)
    assert s.gw.http.get("/v1/evidence/documents", headers=rotterdam).json()["items"] == []
    assert s.gw.http.get(f"/v1/evidence/documents/{doc_id}.json", headers=rotterdam).status_code == 404
    refused = s.gw.http.post("/v1/evidence/covenants/lvv-amsterdam/revocation-report", headers=rotterdam)
    assert refused.status_code == 404
    counsellor = s.gw.headers("ngo-opvang-amsterdam", "counsellor", None)
    assert s.gw.http.get("/v1/evidence/documents", headers=counsellor).status_code == 403


def test_the_destruction_record_says_backups_stay_readable_until_the_epoch_is_destroyed_and_then_not(
    scenario: Scenario,
) -> None:
    s = scenario
    end_the_covenant(s)
    lifecycle = s.gw.container.lifecycle
    assert lifecycle is not None
    s.gw.clock.set(AFTER_CONTACT_RETENTION)  # contact is due, but April's epoch is not closed yet
    early = lifecycle.retention.run(Actor.scheduler(), AUTHORITY)
    doc = s.document(s.parts.service.issue_destruction_record(early.run_id))
    assert doc["format_version"] == 2
    assert doc["batch"]["epochs"] == ["due-2025-04"]
    (april,) = doc["backups"]["epochs"]
    assert april["state"] == "live"
    assert april["destroyed_at"] is None
    assert april["expected_destruction_from"] == "2025-04-30T22:00:00Z"
    assert not any("unreadable" in sentence for sentence in doc["backups"]["statements"])
    assert "stays readable with the key store" in doc["backups"]["statements"][1]

    s.gw.clock.set(datetime(2025, 5, 1, 9, 0, tzinfo=AMS))
    later = lifecycle.retention.run(Actor.scheduler(), AUTHORITY)
    assert [e.epoch_id for e in later.epochs_destroyed] == ["due-2025-04"]
    stored = s.parts.service.issue_destruction_record(early.run_id)  # a new version states the new fact
    doc = s.document(stored)
    (april,) = doc["backups"]["epochs"]
    assert april["state"] == "destroyed"
    assert april["destroyed_at"] == "2025-05-01T07:00:00Z"
    assert doc["backups"]["statements"][1] == (
        f"Epoch due-2025-04 ({april['data_keys_destroyed']} data keys): unreadable in database backups made "
        f"before {doc['batch']['executed_at']}, since epoch due-2025-04 was destroyed on 2025-05-01T07:00:00Z."
    )
    assert "unreadable in database backups" in pdf_text(stored.pdf).replace("\n", " ")
    for data in (stored.signed_json, stored.html, stored.pdf):
        assert verify_bytes(data, s.keys).document_type == "destruction_record"
