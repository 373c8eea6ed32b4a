"""No log, no data: every decision is durably committed before a response, and the log is one chain."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime

import orjson
import pytest
from sqlalchemy import select, text

from gateway.audit.chain import verify_chain
from gateway.audit.writer import AuditWriter
from gateway.store.db import connect
from gateway.store.tables import audit_entries, records
from tests.conftest import Gateway

FAIL_TRIGGER = {
    "sqlite": [
        "CREATE TRIGGER audit_fail BEFORE INSERT ON audit_entries BEGIN SELECT RAISE(ABORT, 'disk full'); END",
    ],
    "postgresql": [
        "CREATE FUNCTION audit_fail() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'disk full'; END $$ LANGUAGE plpgsql",
        "CREATE TRIGGER audit_fail BEFORE INSERT ON audit_entries FOR EACH ROW EXECUTE FUNCTION audit_fail()",
    ],
}


def break_audit_store(gw: Gateway) -> None:
    db = gw.container.db
    with db.write.begin() as conn:
        for statement in FAIL_TRIGGER[db.read.dialect.name]:
            conn.execute(text(statement))


def entries(gw: Gateway) -> list[dict[str, object]]:
    with gw.container.db.read.connect() as conn:
        rows = conn.execute(select(audit_entries.c.entry).order_by(audit_entries.c.seq)).scalars().all()
    return [orjson.loads(r) for r in rows]


def test_when_the_audit_store_cannot_write_a_read_answers_503_and_releases_nothing(gateway: Gateway) -> None:
    p = gateway.register()
    break_audit_store(gateway)
    response = gateway.http.get(
        f"/v1/participants/{p}", headers=gateway.headers("amsterdam", "case_manager", "lso_case_discussion")
    )
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "audit_unavailable"
    assert "Synthetisch" not in response.text
    assert "records" not in response.json()


def test_when_the_audit_store_cannot_write_a_write_changes_nothing(gateway: Gateway) -> None:
    p = gateway.register()
    with gateway.container.db.read.connect() as conn:
        before = conn.execute(select(records.c.id)).all()
    break_audit_store(gateway)
    response = gateway.http.put(
        f"/v1/participants/{p}/records/case_plan",
        json={"fields": {"phase": "opvangfase"}},
        headers=gateway.headers("amsterdam", "case_manager", "intake"),
    )
    assert response.status_code == 503
    with gateway.container.db.read.connect() as conn:
        assert conn.execute(select(records.c.id)).all() == before


def test_when_the_audit_store_cannot_write_a_denial_is_503_too(gateway: Gateway) -> None:
    p = gateway.pseudonym_for("ngo-opvang-amsterdam", gateway.register())
    break_audit_store(gateway)
    response = gateway.http.get(
        f"/v1/participants/{p}", headers=gateway.headers("ngo-opvang-amsterdam", "counsellor", "police_screening")
    )
    assert response.status_code == 503


REQUESTS = [
    ("amsterdam", "case_manager", "lso_case_discussion"),
    ("amsterdam", "case_manager", "shelter_counselling"),
    ("amsterdam", "intake_officer", "police_screening"),
    ("ngo-opvang-amsterdam", "counsellor", "shelter_counselling"),
    ("ngo-opvang-amsterdam", "counsellor", "medical_advice"),
    ("ind", "ind_officer", "identity_nationality"),
    ("avim", "screening_officer", "police_screening"),
    ("rotterdam", "case_manager", "lso_case_discussion"),
    ("ngo-medisch", "medical_advisor", "medical_advice"),
    ("dtv", "return_officer", "curiosity"),
    ("amsterdam", "ind_officer", "lso_case_discussion"),
]


def test_every_response_has_exactly_one_committed_entry_with_its_trace_id(gateway: Gateway) -> None:
    rng = random.Random(7)
    people = [gateway.register(rng.choice(["amsterdam", "rotterdam"])) for _ in range(4)]
    seen: list[tuple[int, str]] = []
    for _ in range(120):
        org, role, purpose = rng.choice(REQUESTS)
        ref = gateway.container.store.resolve("amsterdam", rng.choice(people)) or gateway.container.store.resolve(
            "rotterdam", rng.choice(people)
        )
        pseudonym = gateway.container.store.pseudonym(org, ref.id) if ref else "p" + "b" * 26
        headers = gateway.headers(org, role, purpose if rng.random() > 0.05 else None)
        response = gateway.http.get(f"/v1/participants/{pseudonym}", headers=headers)
        assert response.status_code in (200, 400, 403, 404), response.text
        seen.append((response.status_code, response.headers["traceparent"].split("-")[1]))
    by_trace: dict[str, list[dict[str, object]]] = {}
    for entry in entries(gateway):
        by_trace.setdefault(str(entry["trace_id"]), []).append(entry)
    statuses = {s for s, _ in seen}
    assert {200, 403}.issubset(statuses)
    for status, trace_id in seen:
        logged = by_trace.get(trace_id, [])
        assert len(logged) == 1, f"{status} response with trace {trace_id} has {len(logged)} entries"
        assert logged[0]["decision"] == ("permit" if status == 200 else "deny")
    report = verify_chain(gateway.container.db)
    assert report.ok, report


def test_an_audit_entry_names_who_what_why_and_never_the_contents(gateway: Gateway) -> None:
    p = gateway.register()
    trace = "0af7651916cd43dd8448eb211c80319c"
    headers = gateway.headers(
        "amsterdam", "case_manager", "lso_case_discussion", user="cm.042", traceparent=f"00-{trace}-b7ad6b7169203331-01"
    )
    gateway.http.get(f"/v1/participants/{p}", headers=headers)
    entry = entries(gateway)[-1]
    assert entry["organisation"] == "amsterdam"
    assert entry["client_id"] == "client-amsterdam"
    assert entry["acting_user"] == "cm.042"
    assert entry["role"] == "case_manager"
    assert entry["purpose"] == "lso_case_discussion"
    assert entry["processing_activity_id"] == "urn:nl:lvv-gateway:activity:lso_case_discussion"
    assert entry["decision"] == "permit"
    assert entry["rule_ids"] == ["lso-city-read"]
    assert entry["legal_bases"] == ["eu-gdpr:A6-1-e"]
    assert entry["policy_version"] == gateway.container.policy.version
    assert entry["trace_id"] == trace
    assert entry["parent_span_id"] == "b7ad6b7169203331"
    assert "family_name" in entry["fields"]["identity"]  # type: ignore[index]
    assert entry["time"] == "2024-11-15T09:00:00Z"
    raw = orjson.dumps(entries(gateway)).decode()
    assert "Synthetisch" not in raw
    assert "TEST-V-" not in raw


def test_editing_an_entry_breaks_the_chain_at_that_entry(gateway: Gateway) -> None:
    for _ in range(3):
        gateway.register()
    with gateway.container.db.write.begin() as conn:
        row = conn.execute(select(audit_entries.c.entry).where(audit_entries.c.seq == 2)).scalar_one()
        conn.execute(
            audit_entries.update()
            .where(audit_entries.c.seq == 2)
            .values(entry=row.replace('"intake_officer"', '"case_manager"'))
        )
    report = verify_chain(gateway.container.db)
    assert not report.ok
    assert report.first_bad_seq == 2


def test_deleting_an_entry_breaks_the_chain(gateway: Gateway) -> None:
    for _ in range(3):
        gateway.register()
    with gateway.container.db.write.begin() as conn:
        conn.execute(audit_entries.delete().where(audit_entries.c.seq == 2))
    report = verify_chain(gateway.container.db)
    assert not report.ok
    assert report.first_bad_seq == 2


def test_concurrent_appends_form_one_gap_free_chain_in_group_commits(database_url: str) -> None:
    db = connect(database_url)
    writer = AuditWriter(db)
    now = datetime(2024, 11, 15, tzinfo=UTC)

    def work(n: int) -> None:
        for i in range(150):
            writer.append({"event": "test", "decision": "permit", "trace_id": f"{n:02d}{i:030d}"}, now)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    writer.close()
    with db.read.connect() as conn:
        seqs = conn.execute(select(audit_entries.c.seq).order_by(audit_entries.c.seq)).scalars().all()
    assert seqs == list(range(1, 1201))
    assert writer.batches < writer.appended  # concurrent entries were committed together
    assert verify_chain(db).ok
    db.dispose()


@pytest.mark.parametrize("entries_per_writer", [300])
def test_an_appender_that_fails_resolves_every_waiting_caller(database_url: str, entries_per_writer: int) -> None:
    db = connect(database_url)
    writer = AuditWriter(db)
    now = datetime(2024, 11, 15, tzinfo=UTC)
    ok = writer.append({"event": "test", "decision": "permit", "trace_id": "a" * 32}, now)
    assert ok.seq == 1
    with db.write.begin() as conn:
        for statement in FAIL_TRIGGER[db.read.dialect.name]:
            conn.execute(text(statement))
    futures = [
        writer.submit({"event": "test", "decision": "deny", "trace_id": "b" * 32}, now)
        for _ in range(entries_per_writer)
    ]
    failures = sum(1 for f in futures if f.exception(timeout=10) is not None)
    assert failures == entries_per_writer
    writer.close()
    assert verify_chain(db).ok
    db.dispose()
