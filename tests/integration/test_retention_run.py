"""The retention run against SQLite and PostgreSQL: crypto-shredding what is due, keeping what is held,
logging every destruction, idempotent and safe to interrupt; and the raw SQLite file afterwards."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.engine import make_url

from gateway.crypto.envelope import DecryptionError, Envelope
from gateway.lifecycle.events import Actor
from gateway.lifecycle.facts import destruction_facts
from gateway.retention.model import METHOD, KeepReason
from gateway.retention.run import RetentionRunner
from gateway.store.tables import audit_entries, data_keys, records, retention_destructions, retention_runs
from tests.conftest import AMS, Gateway, synthetic_records

JURIST = Actor.jurist("amsterdam", "jurist.1")
OPERATOR = Actor("amsterdam", "archivist.1", "jurist")
AUTHORITY = "Besluit vernietiging LVV-gegevens 2025 (synthetic)"
AFTER_SIX_MONTHS = datetime(2025, 7, 1, 0, 0, tzinfo=AMS)


def runner(gw: Gateway) -> RetentionRunner:
    assert gw.container.lifecycle is not None
    return gw.container.lifecycle.retention


def pid(gw: Gateway, pseudonym: str, city: str = "amsterdam") -> str:
    ref = gw.container.store.resolve(city, pseudonym)
    assert ref is not None
    return ref.id


def tagged(tag: str) -> dict[str, dict[str, Any]]:
    values = synthetic_records()
    values["identity"]["family_name"] = f"Zilverreiger-{tag}-Uniek"
    values["case_plan"]["plan_summary"] = f"Plan Boomkikker-{tag}"
    return values


def live_keys(gw: Gateway, participant: str) -> set[str]:
    with gw.container.db.read.connect() as conn:
        rows = conn.execute(
            select(data_keys.c.category).where(
                data_keys.c.participant_id == participant, data_keys.c.wrapped_key.is_not(None)
            )
        )
        return set(rows.scalars())


def count(gw: Gateway, table: Any, *where: Any) -> int:
    with gw.container.db.read.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


def destroyed_events(gw: Gateway) -> list[dict[str, Any]]:
    with gw.container.db.read.connect() as conn:
        rows = conn.execute(select(audit_entries.c.entry).order_by(audit_entries.c.seq)).scalars()
        return [e for e in map(json.loads, rows) if e["event"] == "retention.destroyed"]


def test_a_run_destroys_what_is_due_and_keeps_the_participant_under_a_hold(gateway: Gateway) -> None:
    doomed, held = gateway.register(records=tagged("R1")), gateway.register(records=tagged("R2"))
    utrecht = gateway.register("utrecht")
    assert gateway.container.lifecycle is not None
    gateway.container.lifecycle.service.set_hold(JURIST, pid(gateway, held), "appeal", "AWB 25/0001 (synthetic)")
    gateway.clock.set(AFTER_SIX_MONTHS)

    outcome = runner(gateway).run(OPERATOR, AUTHORITY)

    assert outcome.status == "completed"
    assert outcome.participants == 1
    assert outcome.keys_destroyed == 3
    assert live_keys(gateway, pid(gateway, doomed)) == set()
    assert count(gateway, records, records.c.participant_id == pid(gateway, doomed)) == 0
    assert live_keys(gateway, pid(gateway, held)) == {"identity", "contact", "case_plan"}
    assert live_keys(gateway, pid(gateway, utrecht, "utrecht")) == {"identity", "contact", "case_plan"}
    with gateway.container.db.read.connect() as conn:
        stamps = conn.execute(
            select(data_keys.c.destroyed_at).where(data_keys.c.participant_id == pid(gateway, doomed))
        ).scalars()
        assert set(stamps) == {AFTER_SIX_MONTHS}
    (event,) = destroyed_events(gateway)
    assert event["participant"] == pid(gateway, doomed)
    assert event["categories"] == ["case_plan", "contact", "identity"]
    assert event["method"] == METHOD
    assert event["authority"] == AUTHORITY
    assert "Zilverreiger" not in json.dumps(event)
    assert count(gateway, retention_destructions, retention_destructions.c.audit_seq == event["seq"]) == 3


def test_the_successor_regions_data_is_destroyed_only_after_the_successor_covenant_ends(gateway: Gateway) -> None:
    p = gateway.register("utrecht")
    gateway.clock.set(AFTER_SIX_MONTHS)
    runner(gateway).run(OPERATOR, AUTHORITY)
    assert live_keys(gateway, pid(gateway, p, "utrecht")) == {"identity", "contact", "case_plan"}
    gateway.clock.set(datetime(2026, 7, 1, tzinfo=AMS))
    runner(gateway).run(OPERATOR, AUTHORITY)
    assert live_keys(gateway, pid(gateway, p, "utrecht")) == set()


def test_a_second_run_destroys_nothing_more_and_logs_nothing_more(gateway: Gateway) -> None:
    gateway.register()
    gateway.clock.set(AFTER_SIX_MONTHS)
    first = runner(gateway).run(OPERATOR, AUTHORITY)
    second = runner(gateway).run(OPERATOR, AUTHORITY)
    assert first.keys_destroyed == 3
    assert second.keys_destroyed == 0
    assert len(destroyed_events(gateway)) == 1


def test_keys_become_due_category_by_category_as_their_periods_pass(gateway: Gateway) -> None:
    p = gateway.register()
    gateway.clock.set(datetime(2025, 4, 1, 0, 0, tzinfo=AMS))  # contact: P3M after the end
    runner(gateway).run(OPERATOR, AUTHORITY)
    assert live_keys(gateway, pid(gateway, p)) == {"identity", "case_plan"}
    gateway.clock.set(AFTER_SIX_MONTHS)
    runner(gateway).run(OPERATOR, AUTHORITY)
    assert live_keys(gateway, pid(gateway, p)) == set()


def test_an_interrupted_run_is_continued_by_the_next_run(gateway: Gateway) -> None:
    people = [gateway.register() for _ in range(4)]
    gateway.clock.set(AFTER_SIX_MONTHS)

    def interrupt(done: int, total: int) -> None:
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        runner(gateway).run(OPERATOR, AUTHORITY, progress=interrupt, batch=1)  # one participant per transaction
    with gateway.container.db.read.connect() as conn:
        assert conn.execute(select(retention_runs.c.status)).scalar_one() == "interrupted"
    assert sum(1 for p in people if not live_keys(gateway, pid(gateway, p))) == 2
    assert len(destroyed_events(gateway)) == 2

    again = runner(gateway).run(OPERATOR, AUTHORITY)
    assert again.participants == 2
    assert all(not live_keys(gateway, pid(gateway, p)) for p in people)
    assert len(destroyed_events(gateway)) == 4
    assert count(gateway, retention_destructions, retention_destructions.c.audit_seq.is_(None)) == 0


def test_destructions_whose_seq_a_crash_left_unwritten_take_it_from_the_log_not_from_a_second_entry(
    gateway: Gateway,
) -> None:
    gateway.register()
    gateway.clock.set(AFTER_SIX_MONTHS)
    runner(gateway).run(OPERATOR, AUTHORITY)
    (logged,) = destroyed_events(gateway)
    with gateway.container.db.write.begin() as conn:  # as if the process died before writing the seq back
        conn.execute(update(retention_destructions).values(audit_seq=None))
    runner(gateway).run(OPERATOR, AUTHORITY)
    assert destroyed_events(gateway) == [logged]
    assert count(gateway, retention_destructions, retention_destructions.c.audit_seq == logged["seq"]) == 3


def test_a_hold_set_after_planning_still_stops_the_destruction(gateway: Gateway) -> None:
    p = gateway.register()
    gateway.clock.set(AFTER_SIX_MONTHS)
    run = runner(gateway)
    planned = run.plan

    def plan_then_hold(as_of: datetime | None = None):  # type: ignore[no-untyped-def]
        result = planned(as_of)
        with gateway.container.db.write.begin() as conn:
            from gateway.store.tables import legal_holds

            conn.execute(
                legal_holds.insert().values(
                    id="late-hold",
                    participant_id=pid(gateway, p),
                    region="amsterdam",
                    reason="objection",
                    case_reference="BZW 25/7 (synthetic)",
                    organisation="amsterdam",
                    set_by="jurist.1",
                    set_at=gateway.clock.now(),
                )
            )
        return result

    run.plan = plan_then_hold  # type: ignore[method-assign]
    outcome = run.run(OPERATOR, AUTHORITY)
    assert outcome.keys_destroyed == 0
    assert outcome.skipped_on_hold == 1
    assert live_keys(gateway, pid(gateway, p)) == {"identity", "contact", "case_plan"}


def test_the_destruction_facts_state_categories_counts_period_ground_method_and_authority(gateway: Gateway) -> None:
    gateway.register()
    gateway.register()
    held = gateway.register()
    assert gateway.container.lifecycle is not None
    gateway.container.lifecycle.service.set_hold(JURIST, pid(gateway, held), "objection", "BZW 25/9 (synthetic)")
    gateway.clock.set(AFTER_SIX_MONTHS)
    outcome = runner(gateway).run(OPERATOR, AUTHORITY)

    batch = destruction_facts(gateway.container.db, gateway.container.policy, outcome.run_id)
    assert batch.status == "completed"
    assert batch.authority == AUTHORITY
    assert batch.method == "crypto-shredding (AES-256-GCM data keys destroyed)"
    assert batch.participants == 2
    assert batch.keys_destroyed == 6
    assert batch.records_deleted == 6
    assert {c.category: c.keys_destroyed for c in batch.categories} == {"identity": 2, "contact": 2, "case_plan": 2}
    assert {g.rule_id for g in batch.grounds} == {
        "identity-after-covenant",
        "contact-after-covenant",
        "case-plan-after-covenant",
    }
    assert all(g.legal_source and g.suggestion for g in batch.grounds)
    assert batch.period_from is not None
    assert batch.period_until is not None
    assert batch.period_from <= batch.period_until <= AFTER_SIX_MONTHS
    assert batch.as_of == AFTER_SIX_MONTHS
    on_hold = [k for k in batch.kept if k.reason is KeepReason.ON_HOLD]
    assert {k.category for k in on_hold} == {"identity", "contact", "case_plan"}
    assert batch.audit_seq_first is not None
    assert batch.audit_seq_last is not None
    assert batch.audit_seq_first < batch.audit_seq_last


# -- after destruction, nothing is recoverable from the raw file, even with the KEK --------------------


def sqlite_file(gw: Gateway) -> Path:
    if "sqlite" not in gw.container.db.url:
        pytest.skip("raw database files are checked on SQLite only")
    database = make_url(gw.container.db.url).database
    assert database
    return Path(database)


def test_after_a_run_the_raw_sqlite_file_yields_nothing_destroyed_even_with_the_kek(gateway: Gateway) -> None:
    db_file = sqlite_file(gateway)
    victims = [gateway.register(records=tagged(f"X{i}")) for i in range(3)]
    survivor = gateway.register("utrecht", tagged("KEEP"))
    with gateway.container.db.read.connect() as conn:
        doomed_ids = [pid(gateway, v) for v in victims]
        old_keys = [
            bytes(k)
            for k in conn.execute(
                select(data_keys.c.wrapped_key).where(data_keys.c.participant_id.in_(doomed_ids))
            ).scalars()
        ]
        old_records = conn.execute(
            select(records.c.id, records.c.participant_id, records.c.category, records.c.ciphertext).where(
                records.c.participant_id.in_(doomed_ids)
            )
        ).all()
    assert len(old_keys) == 9
    assert len(old_records) == 9
    before = db_file.read_bytes() + db_file.with_name(db_file.name + "-wal").read_bytes()
    assert all(k in before for k in old_keys)  # the search does see a stored wrapped key
    gateway.clock.set(AFTER_SIX_MONTHS)
    outcome = runner(gateway).run(OPERATOR, AUTHORITY)
    assert outcome.wal_checkpointed is True

    raw = db_file.read_bytes()
    wal = db_file.with_name(db_file.name + "-wal")
    raw += wal.read_bytes() if wal.exists() else b""
    assert [k for k in old_keys if k in raw] == []
    assert [r.id for r in old_records if bytes(r.ciphertext) in raw] == []
    for tag in ("X0", "X1", "X2"):
        assert f"Zilverreiger-{tag}".encode() not in raw

    # Read the raw file with a separate SQLite connection and try every wrapped key still in it.
    keys = gateway.container.store.keys  # the KEK and the key store's epoch keys
    raw_conn = sqlite3.connect(f"file:{db_file}?mode=ro", uri=True)
    try:
        remaining = raw_conn.execute(
            "SELECT participant_id, category, wrapped_key, epoch_id FROM data_keys WHERE wrapped_key IS NOT NULL"
        ).fetchall()
        left = raw_conn.execute("SELECT count(*) FROM records WHERE participant_id IN (?, ?, ?)", doomed_ids)
        assert left.fetchone() == (0,)
    finally:
        raw_conn.close()
    assert {r[0] for r in remaining} == {pid(gateway, survivor, "utrecht")}
    attempts = 0
    for participant, category, wrapped, epoch in remaining:
        dek = keys.unwrap(wrapped, participant, category, epoch)  # the keys are right: they open the survivors
        for record in old_records:
            with pytest.raises(DecryptionError):
                Envelope.open_record(dek, record.ciphertext, record.participant_id, record.category, record.id)
            with pytest.raises(DecryptionError):
                keys.unwrap(wrapped, record.participant_id, record.category, epoch)
            attempts += 1
    assert attempts == len(remaining) * len(old_records) == 27


def test_a_run_waits_for_another_processs_lease_and_takes_it_once_expired(gateway: Gateway) -> None:
    from datetime import timedelta

    from gateway.retention.run import RetentionBusy
    from gateway.store.tables import lifecycle_state

    gateway.register()
    gateway.clock.set(AFTER_SIX_MONTHS)
    with gateway.container.db.write.begin() as conn:
        conn.execute(
            update(lifecycle_state).values(
                retention_holder="other@host", retention_lease_until=AFTER_SIX_MONTHS + timedelta(minutes=5)
            )
        )
    with pytest.raises(RetentionBusy):
        runner(gateway).run(OPERATOR, AUTHORITY)
    assert destroyed_events(gateway) == []
    gateway.clock.set(AFTER_SIX_MONTHS + timedelta(minutes=6))  # the other process died; its lease ran out
    assert runner(gateway).run(OPERATOR, AUTHORITY).keys_destroyed == 3
    with gateway.container.db.read.connect() as conn:
        assert conn.execute(select(lifecycle_state.c.retention_holder)).scalar_one() is None
