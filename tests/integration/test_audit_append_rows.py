"""The appender writes rows with the driver directly (its hot path); they must read and compare exactly
like rows written through the declared column types."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from gateway.audit.writer import AuditWriter
from gateway.store.db import Database, connect
from gateway.store.tables import audit_entries

AT = datetime(2024, 11, 15, 9, 0, tzinfo=UTC)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = connect(database_url)
    yield database
    database.dispose()


def test_recorded_times_round_trip_as_utc_and_compare_in_queries(db: Database) -> None:
    writer = AuditWriter(db)
    amsterdam = timezone(timedelta(hours=1))
    writer.append({"decision": "permit", "trace_id": "a" * 32}, AT)
    writer.append({"decision": "deny", "trace_id": "b" * 32}, datetime(2024, 11, 15, 10, 0, 1, tzinfo=amsterdam))
    writer.close()
    with db.read.connect() as conn:
        stored = conn.execute(select(audit_entries.c.recorded_at).order_by("seq")).scalars().all()
        since = conn.execute(
            select(audit_entries.c.seq).where(audit_entries.c.recorded_at >= AT + timedelta(seconds=1))
        ).scalars()
        until = conn.execute(select(audit_entries.c.seq).where(audit_entries.c.recorded_at < AT)).scalars()
        assert stored == [AT, AT + timedelta(seconds=1)]
        assert list(since) == [2]
        assert list(until) == []


def test_optional_columns_hold_nulls_and_the_entry_text_is_exact(db: Database) -> None:
    writer = AuditWriter(db)
    entry = {"decision": "deny", "trace_id": "c" * 32, "organisation": None, "note": "ünïcode \u2014 ok"}
    writer.append(entry, AT)
    writer.close()
    with db.read.connect() as conn:
        row = conn.execute(select(audit_entries)).one()
    assert row.organisation is None
    assert row.participant_id is None
    assert row.decision == "deny"
    assert "ünïcode \u2014 ok" in row.entry
