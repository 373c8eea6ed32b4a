"""Batched appends: one call's entries are committed together, consecutively, in order, all or nothing,
hashed exactly like single entries, and no caller learns an outcome before its COMMIT returned."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import func, select, text

from gateway.audit.chain import verify_chain
from gateway.audit.merkle import root
from gateway.audit.repository import latest_checkpoint
from gateway.audit.writer import Appended, AuditUnavailable, AuditWriter, canonical, leaf_hash
from gateway.store.db import Database, connect
from gateway.store.migrate import upgrade
from gateway.store.tables import audit_entries, audit_head
from tests.support.audit_log import make_sealer, synthetic_entry

NOW = datetime(2024, 11, 15, 9, 0, tzinfo=UTC)

# Fails the insert of one entry only: a batch holding it must leave no trace at all.
FAIL_ON_TRACE = "f" * 32
FAIL_ONE = {
    "sqlite": [
        "CREATE TRIGGER audit_fail_one BEFORE INSERT ON audit_entries "
        f"WHEN NEW.trace_id = '{FAIL_ON_TRACE}' BEGIN SELECT RAISE(ABORT, 'disk full'); END",
    ],
    "postgresql": [
        "CREATE FUNCTION audit_fail_one() RETURNS trigger AS $$ BEGIN "
        f"IF NEW.trace_id = '{FAIL_ON_TRACE}' THEN RAISE EXCEPTION 'disk full'; END IF; RETURN NEW; END "
        "$$ LANGUAGE plpgsql",
        "CREATE TRIGGER audit_fail_one BEFORE INSERT ON audit_entries FOR EACH ROW EXECUTE FUNCTION audit_fail_one()",
    ],
}


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = connect(database_url)
    yield database
    database.dispose()


def entry(trace: int, decision: str = "permit") -> dict[str, Any]:
    return {"event": "test", "decision": decision, "trace_id": f"{trace:032x}"}


def stored(db: Database) -> list[tuple[int, dict[str, Any]]]:
    with db.read.connect() as conn:
        rows = conn.execute(select(audit_entries.c.seq, audit_entries.c.entry).order_by(audit_entries.c.seq)).all()
    return [(int(seq), orjson.loads(data)) for seq, data in rows]


def head(db: Database) -> tuple[int, bytes]:
    with db.read.connect() as conn:
        seq, chain = conn.execute(select(audit_head.c.seq, audit_head.c.chain_hash)).one()
    return int(seq), bytes(chain)


def test_a_batched_call_gets_consecutive_seqs_in_the_order_given_among_concurrent_callers(db: Database) -> None:
    writer = AuditWriter(db, max_batch=64)
    calls: list[tuple[list[dict[str, Any]], Future[list[Appended]]]] = []

    def single_callers(n: int) -> None:
        for i in range(60):
            writer.append(entry(1_000_000 + n * 1000 + i), NOW)

    threads = [threading.Thread(target=single_callers, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for c in range(20):
        batch = [entry(c * 100 + i) for i in range(1 + c * 3)]  # 1 to 58 entries, some beyond one batch
        calls.append((batch, writer.submit_many(batch, NOW)))
    for t in threads:
        t.join()
    results = [(batch, future.result(timeout=30)) for batch, future in calls]
    writer.close()
    by_seq = dict(stored(db))
    for batch, appended in results:
        seqs = [a.seq for a in appended]
        assert seqs == list(range(seqs[0], seqs[0] + len(batch)))
        assert [by_seq[s]["trace_id"] for s in seqs] == [e["trace_id"] for e in batch]
        assert [a.leaf_hash for a in appended] == [leaf_hash(canonical(by_seq[s])) for s in seqs]
    firsts = [appended[0].seq for _, appended in results]
    assert firsts == sorted(firsts)  # calls from one thread are committed in the order they were made
    assert sorted(by_seq) == list(range(1, 240 + sum(1 + c * 3 for c in range(20)) + 1))
    assert verify_chain(db).ok


def test_batched_entries_are_stored_and_hashed_exactly_like_single_appends(tmp_path: Path, db: Database) -> None:
    batch = [synthetic_entry(i) for i in range(1, 101)]  # enough for PostgreSQL's COPY path
    amsterdam = datetime(2024, 11, 15, 10, 0, 0, 123456, tzinfo=timezone(timedelta(hours=1)))
    writer = AuditWriter(db)
    writer.append_many(batch[:3], amsterdam)
    writer.append_many(batch[3:], NOW)
    writer.close()
    one_by_one = connect(f"sqlite:///{tmp_path}/single.db")
    upgrade(one_by_one)
    single = AuditWriter(one_by_one)
    for i, item in enumerate(batch):
        single.append(item, amsterdam if i < 3 else NOW)
    single.close()
    c = audit_entries.c
    columns = (c.seq, c.recorded_at, c.entry, c.leaf_hash, c.chain_hash, c.trace_id, c.organisation, c.participant_id)

    def rows(database: Database) -> list[tuple[Any, ...]]:
        with database.read.connect() as conn:
            found = conn.execute(select(*columns, c.decision).order_by("seq")).all()
        return [(*r[:3], bytes(r[3]), bytes(r[4]), *r[5:]) for r in found]

    assert rows(db) == rows(one_by_one)
    assert rows(db)[0][1] == amsterdam
    assert head(db) == head(one_by_one)
    one_by_one.dispose()


def test_a_call_larger_than_the_batch_limit_is_committed_whole_in_one_transaction(db: Database) -> None:
    writer = AuditWriter(db, max_batch=8)
    appended = writer.append_many([entry(i) for i in range(50)], NOW)
    assert [a.seq for a in appended] == list(range(1, 51))
    assert writer.batches == 1
    writer.close()
    assert verify_chain(db).ok


def test_an_empty_call_appends_nothing(db: Database) -> None:
    writer = AuditWriter(db)
    assert writer.append_many([], NOW) == []
    assert asyncio.run(writer.append_many_async([], NOW)) == []
    writer.close()
    assert head(db)[0] == 0


def test_a_failed_batch_fails_every_caller_in_it_and_leaves_nothing_half_written(db: Database) -> None:
    writer = AuditWriter(db)
    writer.append(entry(1), NOW)
    before = head(db)
    with db.write.begin() as conn:
        for statement in FAIL_ONE[db.read.dialect.name]:
            conn.execute(text(statement))
    # Hold the writer back so that every call below lands in the one batch that fails.
    gate = threading.Event()
    original = writer._write_on

    entered = threading.Event()

    def held(conn: Any, batch: Any) -> list[Appended]:
        entered.set()
        gate.wait(30)
        return original(conn, batch)

    writer._write_on = held  # type: ignore[method-assign]
    blocker = writer.submit(entry(2), NOW)
    assert entered.wait(30)
    calls = [writer.submit_many([entry(100 + i), entry(200 + i)], NOW) for i in range(3)]
    poisoned = writer.submit_many([entry(300), {**entry(301), "trace_id": FAIL_ON_TRACE}, entry(302)], NOW)
    singles = [writer.submit(entry(400 + i), NOW) for i in range(3)]
    gate.set()
    assert blocker.result(timeout=30).seq == 2  # it was taken before the others were queued
    for future in [*calls, poisoned, *singles]:
        assert isinstance(future.exception(timeout=30), AuditUnavailable)
    with pytest.raises(AuditUnavailable):
        writer.append_many([entry(500), {**entry(501), "trace_id": FAIL_ON_TRACE}], NOW)
    assert [a.seq for a in writer.append_many([entry(600), entry(601)], NOW)] == [3, 4]
    writer.close()
    assert before[0] == 1
    assert [e["trace_id"] for _, e in stored(db)] == [f"{t:032x}" for t in (1, 2, 600, 601)]
    assert verify_chain(db).ok


def test_a_closed_writer_refuses_batched_calls(db: Database) -> None:
    writer = AuditWriter(db)
    writer.close()
    assert isinstance(writer.submit_many([entry(1)], NOW).exception(timeout=1), AuditUnavailable)
    with pytest.raises(AuditUnavailable):
        writer.append_many([entry(1)], NOW)
    with pytest.raises(AuditUnavailable):
        asyncio.run(writer.append_many_async([entry(1)], NOW))
    with pytest.raises(AuditUnavailable):
        asyncio.run(writer.append_async(entry(1), NOW))
    assert writer._deadlines == {}  # no event loop is kept alive by a refused call
    with db.read.connect() as conn:
        assert conn.execute(select(func.count()).select_from(audit_entries)).scalar_one() == 0


def test_no_caller_learns_its_outcome_before_the_commit_of_its_entries_returned(db: Database) -> None:
    writer = AuditWriter(db, max_batch=16)
    committed = 0
    original = writer._write_on

    def counting(conn: Any, batch: Any) -> list[Appended]:
        nonlocal committed
        results = original(conn, batch)
        committed = results[-1].seq  # the COMMIT has returned
        return results

    writer._write_on = counting  # type: ignore[method-assign]
    early: list[int] = []

    def check(future: Future[Any]) -> None:
        result = future.result()
        last = result[-1].seq if isinstance(result, list) else result.seq
        if last > committed:
            early.append(last)

    futures: list[Future[Any]] = []
    for i in range(40):
        futures.append(writer.submit_many([entry(i * 10 + k) for k in range(i % 5 + 1)], NOW))
        futures.append(writer.submit(entry(10_000 + i), NOW))
    for future in futures:
        future.add_done_callback(check)

    async def from_a_loop() -> list[list[Appended]]:
        return await asyncio.gather(*(writer.append_many_async([entry(20_000 + i)] * 3, NOW) for i in range(20)))

    for appended in asyncio.run(from_a_loop()):
        assert appended[-1].seq <= committed
    for future in futures:
        future.result(timeout=30)
    writer.close()
    assert early == []
    assert verify_chain(db).ok


def test_async_batched_calls_and_single_appends_share_the_chain(db: Database) -> None:
    writer = AuditWriter(db, max_batch=32)

    async def mixed() -> list[Any]:
        work: list[Any] = []
        for i in range(30):
            work.append(writer.append_many_async([entry(i * 100 + k) for k in range(7)], NOW))
            work.append(writer.append_async(entry(50_000 + i), NOW))
        return list(await asyncio.gather(*work))

    results = asyncio.run(mixed())
    assert writer._deadlines == {}  # nothing waits any more: the loop's timeouts are gone with it
    writer.close()
    by_seq = dict(stored(db))
    for i in range(30):
        batch, single = results[2 * i], results[2 * i + 1]
        seqs = [a.seq for a in batch]
        assert seqs == list(range(seqs[0], seqs[0] + 7))
        assert [by_seq[s]["trace_id"] for s in seqs] == [entry(i * 100 + k)["trace_id"] for k in range(7)]
        assert by_seq[single.seq]["trace_id"] == entry(50_000 + i)["trace_id"]
    assert len(by_seq) == 30 * 8
    assert verify_chain(db).ok


def test_batched_entries_are_sealed_into_a_checkpoint_over_their_leaf_hashes(db: Database, tmp_path: Path) -> None:
    writer = AuditWriter(db)
    appended = writer.append_many([synthetic_entry(i) for i in range(1, 30)], NOW)
    appended += writer.append_many([synthetic_entry(i) for i in range(30, 38)], NOW)
    writer.close()
    sealer = make_sealer(db, tmp_path)
    assert sealer.seal() is not None
    latest = latest_checkpoint(db)
    assert latest is not None
    assert latest.checkpoint.size == 37
    assert latest.checkpoint.root == root([a.leaf_hash for a in appended])
    latest.verify([sealer.signer.verifier])


def _lock_the_log(db: Database) -> tuple[Any, Any]:
    """Hold the log's write lock from another connection (the writer's next batch waits for it)."""
    conn = db.write.connect()
    transaction = conn.begin()  # SQLite: BEGIN IMMEDIATE, the database's write lock
    if not db.is_sqlite:
        conn.execute(text("SELECT seq FROM audit_head WHERE id = 1 FOR UPDATE"))
    return conn, transaction


def _unlock(conn: Any, transaction: Any) -> None:
    transaction.rollback()
    conn.close()


def test_an_async_caller_times_out_by_its_own_deadline_even_behind_a_longer_one(db: Database) -> None:
    writer = AuditWriter(db)
    conn, transaction = _lock_the_log(db)
    try:

        async def waiters() -> tuple[bool, BaseException | None]:
            patient = asyncio.ensure_future(writer.append_many_async([entry(1), entry(2)], NOW, timeout=60))
            await asyncio.sleep(0)
            with pytest.raises(AuditUnavailable) as hurried:
                await writer.append_async(entry(3), NOW, timeout=0.2)
            still_waiting = not patient.done()
            patient.cancel()
            return still_waiting, hurried.value

        still_waiting, error = asyncio.run(waiters())
        assert still_waiting
        assert "TimeoutError" in str(error) or "in time" in str(error)
    finally:
        _unlock(conn, transaction)
    writer.close()  # the queued entries are committed once the lock is gone: they stay logged
    assert [e["trace_id"] for _, e in stored(db)] == [f"{t:032x}" for t in (1, 2, 3)]
    assert verify_chain(db).ok


def test_a_thread_that_waits_too_long_gets_audit_unavailable_and_its_entries_stay_queued(db: Database) -> None:
    writer = AuditWriter(db)
    conn, transaction = _lock_the_log(db)
    try:
        with pytest.raises(AuditUnavailable):
            writer.append(entry(1), NOW, timeout=0.2)
        with pytest.raises(AuditUnavailable):
            writer.append_many([entry(2), entry(3)], NOW, timeout=0.2)
    finally:
        _unlock(conn, transaction)
    writer.close()
    assert [e["trace_id"] for _, e in stored(db)] == [f"{t:032x}" for t in (1, 2, 3)]
    assert verify_chain(db).ok


def test_two_writers_on_one_database_keep_each_call_contiguous_in_one_chain(db: Database) -> None:
    """Two writers stand for two gateway processes: each batch locks the head, so calls never interleave."""
    writers = [AuditWriter(db, max_batch=32), AuditWriter(db, max_batch=32)]
    calls: list[tuple[list[dict[str, Any]], Future[list[Appended]]]] = []
    for c in range(40):
        batch = [entry(c * 100 + i) for i in range(c % 9 + 1)]
        calls.append((batch, writers[c % 2].submit_many(batch, NOW)))
    results = [(batch, future.result(timeout=30)) for batch, future in calls]
    for writer in writers:
        writer.close()
    by_seq = dict(stored(db))
    for batch, appended in results:
        seqs = [a.seq for a in appended]
        assert seqs == list(range(seqs[0], seqs[0] + len(batch)))
        assert [by_seq[s]["trace_id"] for s in seqs] == [e["trace_id"] for e in batch]
    assert sorted(by_seq) == list(range(1, sum(c % 9 + 1 for c in range(40)) + 1))
    assert verify_chain(db).ok
