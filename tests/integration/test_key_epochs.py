"""Key epochs against SQLite and PostgreSQL: the retention run destroys an epoch once its month has passed, a
database backup made before then no longer opens what was destroyed (held records still open), and a run
interrupted between re-wrapping and destroying the epoch file is finished by the next run."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from gateway.crypto.envelope import DecryptionError, Envelope
from gateway.crypto.epochs import DataKeyWrapper
from gateway.lifecycle.events import Actor
from gateway.retention.run import RetentionRunner
from gateway.store.tables import data_keys, key_epochs, legal_holds, records
from tests.conftest import AMS, Gateway, synthetic_records

JURIST = Actor.jurist("amsterdam", "jurist.1")
OPERATOR = Actor("amsterdam", "archivist.1", "jurist")
AUTHORITY = "Besluit vernietiging LVV-gegevens 2025 (synthetic)"
# Amsterdam's covenant ended 2025-01-01: contact falls due in April, identity and case plan in July.
JULY_PASSED = datetime(2025, 8, 1, 0, 0, 30, tzinfo=AMS)


def runner(gw: Gateway) -> RetentionRunner:
    assert gw.container.lifecycle is not None
    return gw.container.lifecycle.retention


def pid(gw: Gateway, pseudonym: str, city: str = "amsterdam") -> str:
    ref = gw.container.store.resolve(city, pseudonym)
    assert ref is not None
    return ref.id


def tagged(tag: str) -> dict[str, dict[str, Any]]:
    values = synthetic_records()
    values["identity"]["family_name"] = f"Grutto-{tag}-Uniek"
    return values


def epochs_of(gw: Gateway, participant: str) -> dict[str, str | None]:
    with gw.container.db.read.connect() as conn:
        rows = conn.execute(
            select(data_keys.c.category, data_keys.c.epoch_id).where(
                data_keys.c.participant_id == participant, data_keys.c.wrapped_key.is_not(None)
            )
        )
        return {r.category: r.epoch_id for r in rows}


def epoch_state(gw: Gateway, epoch_id: str) -> str | None:
    with gw.container.db.read.connect() as conn:
        return conn.execute(select(key_epochs.c.state).where(key_epochs.c.epoch_id == epoch_id)).scalar()


def open_all(conn: sqlite3.Connection, keys: DataKeyWrapper, participant: str) -> dict[str, bytes]:
    """Return the plaintext of every record of `participant` in a raw SQLite database, opened with `keys`."""
    rows = conn.execute(
        "SELECT r.id, r.category, r.ciphertext, k.wrapped_key, k.epoch_id FROM records r JOIN data_keys k "
        "ON k.participant_id = r.participant_id AND k.category = r.category WHERE r.participant_id = ?",
        (participant,),
    ).fetchall()
    assert rows, "the database holds records of the participant"
    out = {}
    for record_id, category, ciphertext, wrapped, epoch in rows:
        dek = keys.unwrap(wrapped, participant, category, epoch)
        out[category] = Envelope.open_record(dek, ciphertext, participant, category, record_id)
    return out


def sqlite_file(gw: Gateway) -> Path:
    if "sqlite" not in gw.container.db.url:
        pytest.skip("a backup and restore of the database file is shown on SQLite")
    database = make_url(gw.container.db.url).database
    assert database
    return Path(database)


def test_a_key_is_made_in_its_due_month_epoch_and_a_hold_moves_it_into_the_hold_epoch(gateway: Gateway) -> None:
    p = gateway.register()
    assert epochs_of(gateway, pid(gateway, p)) == {
        "identity": "due-2025-07",
        "contact": "due-2025-04",
        "case_plan": "due-2025-07",
    }
    assert gateway.container.lifecycle is not None
    hold = gateway.container.lifecycle.service.set_hold(JURIST, pid(gateway, p), "appeal", "AWB 25/11 (synthetic)")
    assert set(epochs_of(gateway, pid(gateway, p)).values()) == {f"hold-{hold.id}"}


def test_a_run_destroys_an_epoch_only_once_its_month_has_fully_passed(gateway: Gateway) -> None:
    gateway.register()
    gateway.clock.set(datetime(2025, 7, 15, tzinfo=AMS))  # everything is due; July's epoch is not closed
    first = runner(gateway).run(OPERATOR, AUTHORITY)
    assert first.keys_destroyed == 3
    assert [e.epoch_id for e in first.epochs_destroyed] == ["due-2025-04"]
    assert epoch_state(gateway, "due-2025-07") is None
    assert gateway.container.store.keys.epochs.exists("due-2025-07")
    gateway.clock.set(JULY_PASSED)
    second = runner(gateway).run(OPERATOR, AUTHORITY)
    assert [e.epoch_id for e in second.epochs_destroyed] == ["due-2025-07"]
    assert epoch_state(gateway, "due-2025-07") == "destroyed"
    assert not gateway.container.store.keys.epochs.exists("due-2025-07")


def test_a_backup_made_before_the_run_opens_no_destroyed_record_once_restored_but_held_records_still_open(
    gateway: Gateway, tmp_path: Path
) -> None:
    db_file = sqlite_file(gateway)
    doomed, held = gateway.register(records=tagged("D1")), gateway.register(records=tagged("H1"))
    survivor = gateway.register("utrecht", tagged("U1"))  # the successor covenant keeps Utrecht's data
    assert gateway.container.lifecycle is not None
    gateway.container.lifecycle.service.set_hold(JURIST, pid(gateway, held), "appeal", "AWB 25/12 (synthetic)")
    keys = gateway.container.store.keys

    backup_file = tmp_path / "backup.db"
    with sqlite3.connect(db_file) as live, sqlite3.connect(backup_file) as copy:
        live.backup(copy)  # the SQLite online backup: a consistent copy, WAL included
    with sqlite3.connect(backup_file) as copy:  # the backup is real: before the run it opens everything
        assert b"Grutto-D1-Uniek" in open_all(copy, keys, pid(gateway, doomed))["identity"]

    gateway.clock.set(JULY_PASSED)
    outcome = runner(gateway).run(OPERATOR, AUTHORITY)
    assert outcome.keys_destroyed == 3
    assert {e.epoch_id for e in outcome.epochs_destroyed} == {"due-2025-04", "due-2025-07"}

    # Restore: the backup replaces the live database (the online backup API, in the other direction).
    with sqlite3.connect(backup_file) as copy, sqlite3.connect(db_file) as live:
        copy.backup(live)
    with sqlite3.connect(db_file) as restored:
        assert restored.execute("SELECT count(*) FROM key_epochs").fetchone() == (0,)  # truly the old state
        wrapped = restored.execute(
            "SELECT category, wrapped_key, epoch_id FROM data_keys WHERE participant_id = ?", (pid(gateway, doomed),)
        ).fetchall()
        assert {(c, e) for c, _, e in wrapped} == {
            ("identity", "due-2025-07"),
            ("contact", "due-2025-04"),
            ("case_plan", "due-2025-07"),
        }
        for category, key, epoch in wrapped:  # the wrapped keys are back, but their epoch keys are gone
            with pytest.raises(DecryptionError):
                keys.unwrap(key, pid(gateway, doomed), category, epoch)
        with pytest.raises(DecryptionError):
            open_all(restored, keys, pid(gateway, doomed))
        kept = open_all(restored, keys, pid(gateway, held))
        assert b"Grutto-H1-Uniek" in kept["identity"]
        assert set(kept) == {"identity", "contact", "case_plan"}
        assert b"Grutto-U1-Uniek" in open_all(restored, keys, pid(gateway, survivor, "utrecht"))["identity"]


def test_a_rerun_finishes_an_epoch_destruction_a_crash_interrupted_after_the_rewrap(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    doomed, held = gateway.register(), gateway.register()
    with gateway.container.db.write.begin() as conn:  # a hold whose keys were not moved when it was set
        conn.execute(
            legal_holds.insert().values(
                id="crash-hold",
                participant_id=pid(gateway, held),
                region="amsterdam",
                reason="objection",
                case_reference="BZW 25/13 (synthetic)",
                organisation="amsterdam",
                set_by="jurist.1",
                set_at=gateway.clock.now(),
            )
        )
    assert set(epochs_of(gateway, pid(gateway, held)).values()) == {"due-2025-04", "due-2025-07"}
    store = gateway.container.store.keys.epochs
    real_destroy = store.destroy

    def crash(epoch_id: str) -> bool:
        raise KeyboardInterrupt  # the process dies after the database stopped referencing the epoch

    monkeypatch.setattr(store, "destroy", crash)
    gateway.clock.set(JULY_PASSED)
    with pytest.raises(KeyboardInterrupt):
        runner(gateway).run(OPERATOR, AUTHORITY)
    assert set(epochs_of(gateway, pid(gateway, held)).values()) == {"hold-crash-hold"}  # re-wrapped, committed
    assert epochs_of(gateway, pid(gateway, doomed)) == {}
    assert epoch_state(gateway, "due-2025-04") == "destroying"
    assert store.exists("due-2025-04")

    monkeypatch.setattr(store, "destroy", real_destroy)
    again = runner(gateway).run(OPERATOR, AUTHORITY)
    assert {e.epoch_id for e in again.epochs_destroyed} == {"due-2025-04", "due-2025-07"}
    assert epoch_state(gateway, "due-2025-04") == epoch_state(gateway, "due-2025-07") == "destroyed"
    assert not store.exists("due-2025-04")
    assert not store.exists("due-2025-07")
    with gateway.container.db.read.connect() as conn:
        row = conn.execute(
            select(records.c.id, records.c.ciphertext, data_keys.c.wrapped_key, data_keys.c.epoch_id)
            .join(
                data_keys,
                (data_keys.c.participant_id == records.c.participant_id) & (data_keys.c.category == records.c.category),
            )
            .where(records.c.participant_id == pid(gateway, held), records.c.category == "identity")
        ).one()
    dek = gateway.container.store.keys.unwrap(row.wrapped_key, pid(gateway, held), "identity", row.epoch_id)
    assert b"Synthetisch" in Envelope.open_record(dek, row.ciphertext, pid(gateway, held), "identity", row.id)


def test_a_lifted_hold_s_keys_move_to_their_new_due_epoch_and_the_hold_epoch_is_destroyed(gateway: Gateway) -> None:
    p = gateway.register()
    assert gateway.container.lifecycle is not None
    service = gateway.container.lifecycle.service
    hold = service.set_hold(JURIST, pid(gateway, p), "appeal", "AWB 25/14 (synthetic)")
    gateway.clock.set(datetime(2025, 9, 10, 12, 0, tzinfo=AMS))
    service.lift_hold(JURIST, hold.id, "Beslissing op bezwaar onherroepelijk (synthetic)")
    outcome = runner(gateway).run(OPERATOR, AUTHORITY)
    assert outcome.keys_destroyed == 0  # the clock restarted at the lift
    assert f"hold-{hold.id}" in {e.epoch_id for e in outcome.epochs_destroyed}
    assert epochs_of(gateway, pid(gateway, p)) == {
        "identity": "due-2026-03",
        "contact": "due-2025-12",
        "case_plan": "due-2026-03",
    }
