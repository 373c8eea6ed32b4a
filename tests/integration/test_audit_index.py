"""The officer's search index: every query answers the same through the index as by scanning the log,
whatever the index's lag (empty, part way, caught up, and with entries appended after it caught up),
on SQLite and PostgreSQL; it is rebuildable; and the log still verifies with it in place."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, insert, update

from gateway import cli
from gateway.audit import index, repository
from gateway.audit.chain import verify_chain
from gateway.audit.query import AuditQuery, EntryFilter, Scope, scope_for
from gateway.audit.repository import latest_checkpoint
from gateway.audit.sealer import Sealer
from gateway.audit.writer import AuditWriter
from gateway.policies.compiled import compile_policy
from gateway.policies.loader import load_config
from gateway.store.db import Database, connect
from gateway.store.tables import audit_index, audit_index_counts, audit_index_terms, participants
from tests.conftest import LVV_CONFIG
from tests.support.audit_log import make_sealer

START = datetime(2024, 11, 1, 8, 0, tzinfo=UTC)
ORGS = ["amsterdam", "rotterdam", "ind", "ngo-opvang-amsterdam"]
REGIONS = ["amsterdam", "rotterdam", "utrecht"]
PURPOSES = ["lso_case_discussion", "return_preparation", None]


def pid(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def entry(i: int) -> dict[str, Any]:
    """A synthetic entry: reads about a participant, listings naming regions and participants, others."""
    base: dict[str, Any] = {
        "v": 1,
        "organisation": ORGS[i % len(ORGS)] if i % 11 else None,
        "decision": "permit" if i % 5 else "deny",
        "reason": "permitted" if i % 5 else ("no_rule_for_purpose" if i % 2 else "unknown_purpose"),
        "trace_id": f"{i:032x}",
    }
    purpose = PURPOSES[i % len(PURPOSES)]
    if purpose is not None:
        base["purpose"] = purpose
    if i % 7 == 0:
        base |= {"event": "exchange.list", "regions": REGIONS[: 1 + i % 3], "participants": [pid(i % 13), pid(5)]}
    elif i % 9 == 0:
        base |= {"event": "exchange.register", "region": REGIONS[i % 3], "participant": pid(i % 13)}
    else:
        base |= {"event": "exchange.read", "participant": pid(i % 13)}
    return base


def moment(i: int) -> datetime:
    return START + timedelta(hours=7 * i, microseconds=i % 3)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = connect(database_url)
    with database.write.begin() as conn:
        conn.execute(
            insert(participants),
            [
                {"id": pid(n), "region": REGIONS[n % 3], "registered_by": "amsterdam", "registered_at": START}
                for n in range(13)
            ],
        )
    yield database
    database.dispose()


def append(db: Database, first: int, last: int) -> None:
    writer = AuditWriter(db)
    try:
        futures = [writer.submit(entry(i), moment(i)) for i in range(first, last + 1)]
        for future in futures:
            future.result(timeout=60)
    finally:
        writer.close()


def scopes() -> list[Scope]:
    policy = compile_policy(load_config(LVV_CONFIG))
    return [scope_for(policy, org) for org in ("amsterdam", "rotterdam", "ind")]


FILTERS = [
    EntryFilter(),
    EntryFilter(participant_id=pid(5)),
    EntryFilter(participant_id=pid(3), decision="permit"),
    EntryFilter(organisation="ind"),
    EntryFilter(purpose="return_preparation"),
    EntryFilter(event="exchange.list"),
    EntryFilter(reasons=("no_rule_for_purpose", "unknown_purpose")),
    EntryFilter(since=moment(40), until=moment(40) + timedelta(days=7)),
    # Boundaries to the millisecond: SQLite's scan of the tail compares times to the millisecond.
    EntryFilter(since=moment(10) + timedelta(milliseconds=1), decision="deny"),
    EntryFilter(no_match=True),
]


def answers(query: AuditQuery) -> list[Any]:
    out: list[Any] = []
    for scope in scopes():
        for flt in FILTERS:
            pages = []
            cursor = None
            while True:
                page = query.page(scope, flt, 4, cursor)
                pages.append([v.seq for v in page.items])
                if page.next_cursor is None:
                    break
                cursor = page.next_cursor
            oldest_first = [seq for seq, _at, _e in query.iterate_raw(scope, flt, batch=3)]
            newest_first = [v.seq for v in query.iterate(scope, flt, batch=5)]
            out.append((scope.organisation, flt, query.count(scope, flt), pages, oldest_first, newest_first))
    return out


def drop_index(db: Database) -> None:
    with db.write.begin() as conn:
        conn.execute(delete(audit_index_counts))
        conn.execute(delete(audit_index_terms))
        conn.execute(delete(audit_index))


def test_every_query_answers_the_same_through_the_index_as_by_scanning_the_log(db: Database) -> None:
    policy = compile_policy(load_config(LVV_CONFIG))
    query = AuditQuery(db, policy, lambda org, participant: f"{org}:{participant}")
    append(db, 1, 120)
    scanned = answers(query)  # nothing indexed: every answer comes from the log itself
    assert index.progress(db).indexed_through == 0
    assert all(a[2] > 0 for a in scanned if not a[1].no_match)
    assert index.catch_up(db, batch=16, limit=50) == 50  # part way: index and tail together
    assert index.progress(db).indexed_through == 50
    assert answers(query) == scanned
    assert index.catch_up(db, batch=16) == 70
    assert index.progress(db) == index.IndexProgress(120, 120)
    assert answers(query) == scanned
    # Entries appended after the index caught up are found in the tail, then through the index.
    append(db, 121, 160)
    with_tail = answers(query)
    assert with_tail != scanned
    drop_index(db)
    assert answers(query) == with_tail  # the scan agrees
    assert index.rebuild(db, batch=7) == 160
    assert answers(query) == with_tail
    assert verify_chain(db).ok


def test_the_index_finds_what_the_entries_say(db: Database) -> None:
    policy = compile_policy(load_config(LVV_CONFIG))
    query = AuditQuery(db, policy, lambda org, participant: participant)
    append(db, 1, 70)
    index.catch_up(db)
    everything = list(query.iterate_raw(None, EntryFilter(), batch=1000))
    assert [seq for seq, _at, _e in everything] == list(range(1, 71))
    by_org = [seq for seq, _at, e in everything if e.get("organisation") == "ind"]
    assert [seq for seq, *_ in query.iterate_raw(None, EntryFilter(organisation="ind"))] == by_org
    listed = [seq for seq, _at, e in everything if pid(5) in (e.get("participants") or [])]
    about = [seq for seq, _at, e in everything if e.get("participant") == pid(5)]
    found = [seq for seq, *_ in query.iterate_raw(None, EntryFilter(participant_id=pid(5)))]
    assert found == sorted(listed + about)
    assert listed
    assert about
    window = [seq for seq, at, _e in everything if moment(20) <= at < moment(20) + timedelta(days=3)]
    got = [
        seq for seq, *_ in query.iterate_raw(None, EntryFilter(since=moment(20), until=moment(20) + timedelta(days=3)))
    ]
    assert got == window
    assert len(window) > 3


def test_a_second_indexer_never_duplicates_or_skips(db: Database) -> None:
    append(db, 1, 30)
    assert index.catch_up(db, batch=10, limit=10) == 10
    assert index.catch_up(db, batch=10) == 20
    assert index.catch_up(db) == 0
    assert index.progress(db) == index.IndexProgress(30, 30)


def test_a_partners_own_entries_are_the_same_through_the_index_and_the_tail(db: Database) -> None:
    append(db, 1, 90)
    query = AuditQuery(db, compile_policy(load_config(LVV_CONFIG)), lambda org, participant: participant)
    everything = list(query.iterate_raw(None, EntryFilter(), batch=1000))
    for through in (0, 40, 90):
        if through:
            index.catch_up(db, limit=through - index.progress(db).indexed_through)
        assert index.progress(db).indexed_through == through
        for org in ("ind", "amsterdam"):
            expected = [seq for seq, _at, e in everything if e.get("organisation") == org and 10 < seq <= 80]
            pages, after = [], 10
            while page := repository.entries_of_organisation(db, org, after, 7, 80):
                pages += [stored.seq for stored in page]
                after = page[-1].seq
            assert pages == expected
            assert len(expected) > 7


def test_gateway_audit_reindex_rebuilds_a_damaged_index_from_the_log(
    db: Database, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    query = AuditQuery(db, compile_policy(load_config(LVV_CONFIG)), lambda org, participant: participant)
    append(db, 1, 40)
    ind = EntryFilter(organisation="ind")
    scanned = [seq for seq, *_ in query.iterate_raw(None, ind)]
    index.catch_up(db)
    with db.write.begin() as conn:
        conn.execute(update(audit_index).where(audit_index.c.organisation == "ind").values(organisation="avim"))
    assert [seq for seq, *_ in query.iterate_raw(None, ind)] == []  # the index is what searches read
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GATEWAY_DATABASE_URL", database_url)
    assert cli.main(["audit", "reindex"]) == 0
    assert "the index holds entries 1..40 of 40" in capsys.readouterr().out
    assert [seq for seq, *_ in query.iterate_raw(None, ind)] == scanned
    append(db, 41, 45)
    assert cli.main(["audit", "reindex", "--catch-up"]) == 0
    assert "indexed 5 entries; the index holds entries 1..45 of 45" in capsys.readouterr().out


def test_the_sealer_fills_the_index_behind_the_log(db: Database, tmp_path: Path) -> None:
    signer = make_sealer(db, tmp_path / "keys").signer
    sealer = Sealer(db, signer, interval=0.05, max_entries=25)
    append(db, 1, 60)
    sealer.start()
    try:
        deadline = time.monotonic() + 120
        while index.progress(db).indexed_through < 60:
            assert time.monotonic() < deadline, index.progress(db)
            time.sleep(0.05)  # polling a condition, with a generous deadline
    finally:
        sealer.close()
    assert sealer.indexed == 60
    assert latest_checkpoint(db) is not None
    query = AuditQuery(db, compile_policy(load_config(LVV_CONFIG)), lambda org, participant: participant)
    everything = [seq for seq, *_ in query.iterate_raw(None, EntryFilter(event="exchange.list"))]
    assert everything == [i for i in range(1, 61) if i % 7 == 0]
