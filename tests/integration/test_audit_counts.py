"""An officer's count is the number of entries her search returns, for every log, scope, filter and index
lag: through the counted blocks, their overflow, the partial days at a window's edges, the index and the
not-yet-indexed tail, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, target
from hypothesis import strategies as st
from sqlalchemy import delete, insert, select, update

from gateway.audit import counts, index
from gateway.audit.query import AuditQuery, EntryFilter, Scope, scope_for
from gateway.audit.writer import AuditWriter
from gateway.policies.compiled import compile_policy
from gateway.policies.loader import load_config
from gateway.store.db import Database, connect
from gateway.store.tables import (
    audit_entries,
    audit_head,
    audit_index,
    audit_index_counts,
    audit_index_terms,
    participants,
)
from tests.conftest import LVV_CONFIG

# Midnight UTC, 2 days before a block of 8 days and of 64 days starts (day 20,032 since the epoch is
# 313 * 64): logs cross blocks of every small level.
START = datetime(2024, 11, 3, 0, 0, tzinfo=UTC)
ORGS = [None, "amsterdam", "rotterdam", "ind"]
REGIONS = ["amsterdam", "rotterdam", "utrecht", "a|m", "x_y"]
PURPOSES = [None, "lso_case_discussion", "return_preparation", "made-up-%"]
EVENTS = ["exchange.read", "exchange.list", "exchange.register", "auth.refused"]
REASONS = [None, "permitted", "no_rule_for_purpose", "unknown_purpose"]


def pid(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def moments() -> st.SearchStrategy[datetime]:
    """Moments on a few days around block edges (8 and 64 days), at midnight, a microsecond either side,
    or during the day, so that entries and window edges share days."""
    day = st.sampled_from([0, 1, 2, 4, 9, 10, 17, 60, 65, 66, 67, 74]).map(lambda d: START + timedelta(days=d))
    seconds = [-1e-6, 0, 1e-6, 3 * 3600, 9.5 * 3600, 14 * 3600, 20.75 * 3600, 86_400 - 1e-6]
    return st.builds(lambda d, s: d + timedelta(seconds=s), day, st.sampled_from(seconds))


@st.composite
def entries(draw: st.DrawFn) -> tuple[dict[str, Any], datetime]:
    entry: dict[str, Any] = {
        "v": 1,
        "event": draw(st.sampled_from(EVENTS)),
        "decision": draw(st.sampled_from(["permit", "deny"])),
        "trace_id": "0" * 32,
    }
    for key, values in (("organisation", ORGS), ("purpose", PURPOSES), ("reason", REASONS)):
        value = draw(st.sampled_from(values))
        if value is not None:
            entry[key] = value
    if draw(st.booleans()):
        entry["participant"] = pid(draw(st.integers(0, 7)))  # 6 and 7 are not registered
    if draw(st.integers(0, 3)) == 0:
        entry["region"] = draw(st.sampled_from(REGIONS))
    if draw(st.integers(0, 2)) == 0:
        entry["regions"] = draw(st.lists(st.sampled_from(REGIONS), max_size=3))
        entry["participants"] = [pid(n) for n in draw(st.lists(st.integers(0, 7), max_size=3))]
    return entry, draw(moments())


def sometimes(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly None: a filter with every part set matches almost nothing."""
    return st.one_of(st.none(), st.none(), st.none(), values)


@st.composite
def filters(draw: st.DrawFn) -> EntryFilter:
    return EntryFilter(
        participant_id=draw(sometimes(st.sampled_from([pid(1), pid(4), pid(6)]))),
        organisation=draw(sometimes(st.sampled_from(ORGS[1:]))),
        purpose=draw(sometimes(st.sampled_from(PURPOSES[1:]))),
        decision=draw(sometimes(st.sampled_from(["permit", "deny"]))),
        event=draw(sometimes(st.sampled_from(EVENTS))),
        reasons=draw(sometimes(st.lists(st.sampled_from(REASONS[1:]), min_size=1, max_size=2, unique=True).map(tuple)))
        or (),
        since=draw(st.one_of(st.none(), moments(), moments())),
        until=draw(st.one_of(st.none(), moments(), moments())),
    )


def scopes() -> st.SearchStrategy[Scope]:
    policy = compile_policy(load_config(LVV_CONFIG))
    configured = st.sampled_from([scope_for(policy, org) for org in ("amsterdam", "rotterdam", "ind")])
    made = st.builds(
        lambda org, regions: Scope(org, frozenset(regions), "a scope made for the test"),
        st.sampled_from(ORGS[1:]),
        st.sets(st.sampled_from(REGIONS), max_size=3),
    )
    return st.one_of(configured, made)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = connect(database_url)
    with database.write.begin() as conn:
        conn.execute(
            insert(participants),
            [
                {"id": pid(n), "region": REGIONS[n % 3], "registered_by": "amsterdam", "registered_at": START}
                for n in range(6)
            ],
        )
    yield database
    database.dispose()


def start_again(db: Database) -> None:
    """Empty the log and its index (the database is reused by every example)."""
    with db.write.begin() as conn:
        for table in (audit_index_counts, audit_index_terms, audit_index, audit_entries):
            conn.execute(delete(table))
        conn.execute(update(audit_head).where(audit_head.c.id == 1).values(seq=0, chain_hash=bytes(32)))


def append(db: Database, log: list[tuple[dict[str, Any], datetime]]) -> None:
    writer = AuditWriter(db)
    try:
        for future in [writer.submit(entry, at) for entry, at in log]:
            future.result(timeout=60)
    finally:
        writer.close()


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    log=st.lists(entries(), min_size=0, max_size=80),
    indexed=st.integers(0, 80),
    max_signatures=st.sampled_from([1, 2, 3, counts.MAX_SIGNATURES]),
    asked=st.lists(st.tuples(scopes(), filters()), min_size=1, max_size=10),
)
def test_a_count_is_the_number_of_entries_the_search_returns(
    db: Database,
    log: list[tuple[dict[str, Any], datetime]],
    indexed: int,
    max_signatures: int,
    asked: list[tuple[Scope, EntryFilter]],
) -> None:
    start_again(db)
    append(db, log)
    index.catch_up(db, batch=7, limit=indexed, max_signatures=max_signatures)
    assert index.progress(db).indexed_through == min(indexed, len(log))
    query = AuditQuery(db, compile_policy(load_config(LVV_CONFIG)), lambda org, participant: participant)
    found = 0
    for scope, flt in asked:
        expected = len(list(query.iterate(scope, flt, batch=9)))
        assert query.count(scope, flt) == expected, (scope, flt)
        found += expected
    target(float(found))  # steer towards logs and questions with many matches


def test_counts_stay_within_their_cap_and_a_rebuild_gives_the_same_counts(db: Database) -> None:
    log = [
        ({"v": 1, "event": "exchange.read", "decision": "deny", "purpose": f"p{i % 9}", "organisation": "ind"}, at)
        for i, at in enumerate(START + timedelta(hours=5 * i) for i in range(200))
    ]
    append(db, log)
    assert index.catch_up(db, batch=13, max_signatures=4) == 200
    with db.read.connect() as conn:
        per_block = conn.execute(
            select(audit_index_counts.c.level, audit_index_counts.c.block, audit_index_counts.c.sig)
        ).all()
    by_block: dict[tuple[int, int], int] = {}
    for level, block, sig in per_block:
        if sig != counts.OVERFLOW:
            by_block[(level, block)] = by_block.get((level, block), 0) + 1
    assert max(by_block.values()) == 4
    assert any(sig == counts.OVERFLOW for *_, sig in per_block)
    query = AuditQuery(db, compile_policy(load_config(LVV_CONFIG)), lambda org, participant: participant)
    ind = Scope("ind", frozenset(), "ind")
    asked = [
        EntryFilter(),
        EntryFilter(purpose="p3"),
        EntryFilter(since=START + timedelta(days=3, hours=2), until=START + timedelta(days=33)),
    ]
    capped = [query.count(ind, flt) for flt in asked]
    assert capped == [200, 22, 144]
    assert index.rebuild(db, batch=50) == 200
    assert [query.count(ind, flt) for flt in asked] == capped
