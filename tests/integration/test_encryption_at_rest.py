"""Records at rest: ciphertext only, bound to their row, and gone for good once their data key is destroyed.

Raw-file checks read the SQLite database and its write-ahead log byte for byte; the row checks read every
cell of every table and run against SQLite and PostgreSQL.
"""

from __future__ import annotations

import base64
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.engine import make_url

from gateway.crypto.envelope import DecryptionError, Envelope
from gateway.crypto.keys import KEK_FILE, PSEUDONYM_FILE
from gateway.store.tables import data_keys, metadata, records
from tests.conftest import Gateway, synthetic_records

PROBLEM = "application/problem+json"


# -- synthetic participants with values that occur nowhere else ----------------------------------


def distinctive(tag: str) -> dict[str, dict[str, Any]]:
    """Return synthetic records whose values carry `tag`, so a byte search cannot hit by chance."""
    records_ = synthetic_records()
    records_["identity"].update(
        v_number=f"TEST-V-{tag}-90817",
        family_name=f"Kwikstaart-{tag}-Zeldzaam",
        given_names=f"Ploeterina-{tag}",
        nationality="XXB",
    )
    records_["contact"].update(shelter_location=f"Nachtvlinderhof-{tag} 42", phone="+31 6 98765432")
    records_["case_plan"].update(plan_summary=f"Synthetisch plan Reigerbos-{tag}")
    return records_


def secret_values(records_: dict[str, dict[str, Any]]) -> list[str]:
    """Return the values a plaintext leak would expose (the tagged and rarely occurring ones)."""
    return [
        records_["identity"]["v_number"],
        records_["identity"]["family_name"],
        records_["identity"]["given_names"],
        records_["contact"]["shelter_location"],
        records_["contact"]["phone"],
        records_["case_plan"]["plan_summary"],
    ]


def participant_id(gw: Gateway, pseudonym: str) -> str:
    ref = gw.container.store.resolve("amsterdam", pseudonym)
    assert ref is not None
    return ref.id


# Uvicorn drops the keep-alive connection after an unhandled error; `Connection: close` keeps the
# next request of these tests from reusing it.
CLOSE = {"Connection": "close"}


def read(gw: Gateway, pseudonym: str) -> httpx.Response:
    headers = gw.headers("amsterdam", "case_manager", "lso_case_discussion", **CLOSE)
    return gw.http.get(f"/v1/participants/{pseudonym}", headers=headers)


def write(gw: Gateway, pseudonym: str, category: str, fields: dict[str, Any]) -> httpx.Response:
    headers = gw.headers("amsterdam", "case_manager", "intake", **CLOSE)
    return gw.http.put(f"/v1/participants/{pseudonym}/records/{category}", json={"fields": fields}, headers=headers)


# -- what is stored ------------------------------------------------------------------------------


def sqlite_file(gw: Gateway) -> Path:
    """Return the gateway's SQLite database file; skip on PostgreSQL (its files are not ours to read)."""
    if "sqlite" not in gw.container.db.url:
        pytest.skip("raw database files are checked on SQLite only")
    database = make_url(gw.container.db.url).database
    assert database
    return Path(database)


def raw_bytes(db_file: Path) -> bytes:
    """Return the bytes of the database file and of its write-ahead log, if any."""
    wal = db_file.with_name(db_file.name + "-wal")
    return db_file.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def checkpoint(db_file: Path) -> None:
    """Copy the write-ahead log into the database file and truncate it."""
    conn = sqlite3.connect(db_file)
    try:
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    finally:
        conn.close()
    assert busy == 0
    wal = db_file.with_name(db_file.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0


def every_cell(gw: Gateway) -> Iterator[tuple[str, Any]]:
    """Yield (table.column, value) for every cell of every table of the schema."""
    with gw.container.db.read.connect() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(select(table)).mappings():
                for column, value in row.items():
                    yield f"{table.name}.{column}", value


def cells_holding(gw: Gateway, needles: list[bytes]) -> list[str]:
    """Return the cells whose stored bytes or text contain any needle."""
    hits = []
    for where, value in every_cell(gw):
        data = value if isinstance(value, bytes) else str(value).encode()
        if any(needle in data for needle in needles):
            hits.append(where)
    return hits


def kek(gw: Gateway) -> bytes:
    return base64.b64decode((gw.container.settings.key_dir / KEK_FILE).read_text().strip())


def forms_of(secret: bytes) -> list[bytes]:
    """Return the encodings a stored copy of a key could take."""
    return [
        secret,
        base64.b64encode(secret),
        base64.urlsafe_b64encode(secret).rstrip(b"="),
        secret.hex().encode(),
        secret.hex().upper().encode(),
    ]


# -- (a) plaintext never reaches the disk --------------------------------------------------------


def test_registered_values_are_not_in_the_sqlite_file_or_its_wal(gateway: Gateway) -> None:
    db_file = sqlite_file(gateway)
    values = distinctive("A1")
    p = gateway.register("amsterdam", values)
    needles = [v.encode() for v in secret_values(values)]

    before = raw_bytes(db_file)
    assert p.encode() in before  # the pseudonym is stored in clear, so the search does see the data
    assert [n for n in needles if n in before] == []

    checkpoint(db_file)
    after = db_file.read_bytes()
    assert p.encode() in after
    assert [n for n in needles if n in after] == []


def test_registered_values_are_stored_only_as_ciphertext_in_every_table(gateway: Gateway) -> None:
    values = distinctive("A2")
    p = gateway.register("amsterdam", values)
    needles = [v.encode() for v in secret_values(values)]
    assert cells_holding(gateway, [p.encode()]) == ["pseudonyms.pseudonym"]
    assert cells_holding(gateway, needles) == []
    assert cells_holding(gateway, [n.hex().encode() for n in needles]) == []


def test_equal_records_of_two_participants_have_unrelated_ciphertexts(gateway: Gateway) -> None:
    same = distinctive("A3")
    first, second = gateway.register("amsterdam", same), gateway.register("amsterdam", same)
    with gateway.container.db.read.connect() as conn:
        rows = conn.execute(
            select(records.c.participant_id, records.c.category, records.c.ciphertext).where(
                records.c.participant_id.in_([participant_id(gateway, first), participant_id(gateway, second)])
            )
        ).all()
    assert len(rows) == 2 * len(same)
    ciphertexts = [bytes(r.ciphertext) for r in rows]
    assert len(set(ciphertexts)) == len(ciphertexts)
    nonces = [c[:12] for c in ciphertexts]
    assert len(set(nonces)) == len(nonces)


# -- (b) crypto-shredding ------------------------------------------------------------------------


def destroy_data_key(gw: Gateway, pid: str, category: str) -> bytes:
    """Destroy one data key the way crypto-shredding does; return the wrapped key that was stored."""
    where = (data_keys.c.participant_id == pid, data_keys.c.category == category)
    with gw.container.db.write.begin() as conn:
        wrapped = conn.execute(select(data_keys.c.wrapped_key).where(*where)).scalar_one()
        conn.execute(update(data_keys).where(*where).values(wrapped_key=None, destroyed_at=gw.clock.now()))
    assert wrapped is not None
    return bytes(wrapped)


def test_a_destroyed_category_is_absent_from_a_permitted_read(gateway: Gateway) -> None:
    p = gateway.register("amsterdam", distinctive("B1"))
    assert "case_plan" in read(gateway, p).json()["records"]
    destroy_data_key(gateway, participant_id(gateway, p), "case_plan")

    response = read(gateway, p)
    assert response.status_code == 200
    body = response.json()
    assert "case_plan" not in body["records"]
    assert body["records"]["identity"]["fields"]["family_name"] == "Kwikstaart-B1-Zeldzaam"
    assert "Reigerbos-B1" not in response.text


def test_a_write_to_a_destroyed_category_is_refused_with_409(gateway: Gateway) -> None:
    p = gateway.register("amsterdam", distinctive("B2"))
    pid = participant_id(gateway, p)
    destroy_data_key(gateway, pid, "case_plan")

    response = write(gateway, p, "case_plan", {"phase": "opvangfase", "plan_summary": "Herschreven-B2"})
    assert response.status_code == 409
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["code"] == "data_destroyed"
    assert "Herschreven-B2" not in response.text
    with gateway.container.db.read.connect() as conn:
        versions = conn.execute(
            select(records.c.version).where(records.c.participant_id == pid, records.c.category == "case_plan")
        ).all()
        key = conn.execute(
            select(data_keys.c.wrapped_key).where(
                data_keys.c.participant_id == pid, data_keys.c.category == "case_plan"
            )
        ).scalar_one()
    assert [v.version for v in versions] == [1]
    assert key is None  # a write never brings a destroyed key back


def test_the_kek_decrypts_no_ciphertext_of_a_destroyed_category_with_any_remaining_key(gateway: Gateway) -> None:
    victim = gateway.register("amsterdam", distinctive("B3"))
    gateway.register("amsterdam", distinctive("B4"))
    assert write(gateway, victim, "case_plan", {"phase": "opvangfase"}).status_code == 200
    pid = participant_id(gateway, victim)
    destroy_data_key(gateway, pid, "case_plan")
    keys = gateway.container.store.keys  # the KEK and the key store's epoch keys

    with gateway.container.db.read.connect() as conn:
        shredded = conn.execute(
            select(records.c.id, records.c.ciphertext).where(
                records.c.participant_id == pid, records.c.category == "case_plan"
            )
        ).all()
        remaining = conn.execute(
            select(
                data_keys.c.participant_id, data_keys.c.category, data_keys.c.wrapped_key, data_keys.c.epoch_id
            ).where(data_keys.c.wrapped_key.is_not(None))
        ).all()
    assert len(shredded) == 2
    assert len(remaining) == 2 * 3 - 1

    # The KEK is the right one: it still opens a record whose key was not destroyed.
    identity = next(k for k in remaining if k.participant_id == pid and k.category == "identity")
    with gateway.container.db.read.connect() as conn:
        row = conn.execute(
            select(records.c.id, records.c.ciphertext).where(
                records.c.participant_id == pid, records.c.category == "identity"
            )
        ).one()
    dek = keys.unwrap(identity.wrapped_key, pid, "identity", identity.epoch_id)
    assert b"Kwikstaart-B3-Zeldzaam" in Envelope.open_record(dek, row.ciphertext, pid, "identity", row.id)

    attempts = 0
    for record in shredded:
        for key in remaining:
            dek = keys.unwrap(key.wrapped_key, key.participant_id, key.category, key.epoch_id)
            with pytest.raises(DecryptionError):
                Envelope.open_record(dek, record.ciphertext, pid, "case_plan", record.id)
            with pytest.raises(DecryptionError):
                keys.unwrap(key.wrapped_key, pid, "case_plan", key.epoch_id)
            attempts += 1
    assert attempts == len(shredded) * len(remaining)


def test_a_destroyed_wrapped_key_is_gone_from_the_sqlite_file_after_a_checkpoint(gateway: Gateway) -> None:
    db_file = sqlite_file(gateway)
    p = gateway.register("amsterdam", distinctive("B5"))
    checkpoint(db_file)
    old = destroy_data_key(gateway, participant_id(gateway, p), "case_plan")
    checkpoint(db_file)
    assert old not in db_file.read_bytes()


# -- (c) a ciphertext is bound to its row --------------------------------------------------------


def swap_ciphertexts(gw: Gateway, first: str, second: str, category: str) -> None:
    with gw.container.db.write.begin() as conn:
        rows = {
            r.participant_id: r
            for r in conn.execute(
                select(records.c.id, records.c.participant_id, records.c.ciphertext).where(
                    records.c.participant_id.in_([first, second]), records.c.category == category
                )
            )
        }
        assert set(rows) == {first, second}
        for pid, other in ((first, second), (second, first)):
            conn.execute(update(records).where(records.c.id == rows[pid].id).values(ciphertext=rows[other].ciphertext))


def test_a_ciphertext_moved_to_another_participant_does_not_decrypt_or_leak(gateway: Gateway) -> None:
    values_a, values_b = distinctive("C1"), distinctive("C2")
    a, b = gateway.register("amsterdam", values_a), gateway.register("amsterdam", values_b)
    swap_ciphertexts(gateway, participant_id(gateway, a), participant_id(gateway, b), "identity")

    for pseudonym in (a, b):
        response = read(gateway, pseudonym)
        assert response.status_code == 500
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["code"] == "record_integrity"
        for value in secret_values(values_a) + secret_values(values_b):
            assert value not in response.text


def test_a_write_over_a_moved_ciphertext_fails_without_writing(gateway: Gateway) -> None:
    values_a, values_b = distinctive("C3"), distinctive("C4")
    a, b = gateway.register("amsterdam", values_a), gateway.register("amsterdam", values_b)
    pid_a, pid_b = participant_id(gateway, a), participant_id(gateway, b)
    swap_ciphertexts(gateway, pid_a, pid_b, "case_plan")

    response = write(gateway, a, "case_plan", {"phase": "opvangfase"})
    assert response.status_code == 500
    assert response.json()["code"] == "record_integrity"
    assert "Reigerbos-C4" not in response.text
    with gateway.container.db.read.connect() as conn:
        versions = conn.execute(
            select(records.c.version).where(records.c.participant_id == pid_a, records.c.category == "case_plan")
        ).all()
    assert [v.version for v in versions] == [1]


def test_an_older_version_replayed_into_the_latest_row_does_not_decrypt(gateway: Gateway) -> None:
    p = gateway.register("amsterdam", distinctive("C5"))
    assert write(gateway, p, "case_plan", {"plan_summary": "Nieuwer plan C5"}).status_code == 200
    pid = participant_id(gateway, p)
    with gateway.container.db.write.begin() as conn:
        rows = {
            r.version: r
            for r in conn.execute(
                select(records.c.id, records.c.version, records.c.ciphertext).where(
                    records.c.participant_id == pid, records.c.category == "case_plan"
                )
            )
        }
        conn.execute(update(records).where(records.c.id == rows[2].id).values(ciphertext=rows[1].ciphertext))

    response = read(gateway, p)
    assert response.status_code == 500
    assert "Reigerbos-C5" not in response.text
    assert "Nieuwer plan C5" not in response.text


# -- (d) the key-encryption key stays out of the database ----------------------------------------


def test_the_kek_is_not_in_the_sqlite_file_or_its_wal(gateway: Gateway) -> None:
    db_file = sqlite_file(gateway)
    gateway.register("amsterdam", distinctive("D1"))
    needles = forms_of(kek(gateway))
    assert [n for n in needles if n in raw_bytes(db_file)] == []
    checkpoint(db_file)
    assert [n for n in needles if n in db_file.read_bytes()] == []


def test_no_table_holds_the_kek_or_the_pseudonym_key(gateway: Gateway) -> None:
    gateway.register("amsterdam", distinctive("D2"))
    pseudonym_key = base64.b64decode((gateway.container.settings.key_dir / PSEUDONYM_FILE).read_text().strip())
    assert cells_holding(gateway, forms_of(kek(gateway))) == []
    assert cells_holding(gateway, forms_of(pseudonym_key)) == []
