"""The officer's search index: derived from the log, filled behind it, rebuildable at any time.

The log (`audit_entries`) stays append-only and minimal on the write path. The columns an officer
searches on (organisation, participant, purpose, decision, event, reason, region, time, trace id)
are copied from each entry's canonical JSON into `audit_index`, and the entry's `regions` and listed
`participants` into `audit_index_terms`, by the sealer in batches after it seals (on PostgreSQL only
the elected sealer), or all at once by `gateway audit reindex`. Nothing here is evidence: the index
can be dropped and rebuilt from the log, and every officer query reads the entries themselves.

The index holds entries 1..`indexed_through` without gaps (each batch is one transaction, in order);
queries answer from the index up to there and scan the log beyond it (the tail), so an answer is
always complete, whatever the index's lag.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Connection, delete, func, insert, select
from sqlalchemy.exc import IntegrityError

from gateway.store.db import Database
from gateway.store.tables import audit_entries, audit_head, audit_index, audit_index_terms, participants

BATCH = 5_000
_PARTICIPANT = re.compile(r'"participant":"([^"]{1,36})"')
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
REGION, PARTICIPANT = "region", "participant"


def micros(moment: datetime) -> int:
    """Return an aware moment as whole microseconds since the epoch (the index's `at`)."""
    delta = moment.astimezone(UTC) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _text(value: Any, size: int) -> str | None:
    return value[:size] if isinstance(value, str) else None


def index_rows(
    seq: int, recorded_at: datetime, entry: str, regions: dict[str, str] | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Return the index row and the term rows of one stored entry (`regions`: participant id -> region)."""
    data = orjson.loads(entry)
    participant = _text(data.get("participant"), 36)
    row = {
        "seq": seq,
        "at": micros(recorded_at),
        "organisation": _text(data.get("organisation"), 64),
        "participant_id": participant,
        "participant_region": (regions or {}).get(participant) if participant else None,
        "purpose": _text(data.get("purpose"), 64),
        "decision": str(data.get("decision", ""))[:8],
        "event": str(data.get("event", ""))[:64],
        "reason": _text(data.get("reason"), 64),
        "region": _text(data.get("region"), 64),
        "trace_id": str(data.get("trace_id") or "")[:32],
    }
    terms = []
    for kind, key in ((REGION, "regions"), (PARTICIPANT, "participants")):
        if kind == PARTICIPANT and participant:
            continue  # a participant filter matches a listing only when the entry is about no one participant
        values = data.get(key)
        if isinstance(values, list):
            for value in sorted({v for v in values if isinstance(v, str) and len(v) <= 64}):
                terms.append({"kind": kind, "value": value, "seq": seq})
    return row, terms


def indexed_through(conn: Connection) -> int:
    """Return the last entry the index holds (0 when empty): entries 1..that are indexed."""
    return int(conn.execute(select(func.coalesce(func.max(audit_index.c.seq), 0))).scalar_one())


@dataclass(frozen=True, slots=True)
class IndexProgress:
    indexed_through: int
    head: int

    @property
    def behind(self) -> int:
        """Return how many committed entries the index does not hold yet."""
        return self.head - self.indexed_through


def progress(db: Database) -> IndexProgress:
    """Return how far the index has caught up with the log."""
    with db.read.connect() as conn:
        head = int(conn.execute(select(audit_head.c.seq).where(audit_head.c.id == 1)).scalar_one())
        return IndexProgress(indexed_through(conn), head)


def catch_up(
    db: Database, batch: int = BATCH, limit: int | None = None, on_batch: Callable[[int], None] | None = None
) -> int:
    """Index entries committed since the index's last one, `batch` per transaction; return how many.

    `limit` caps the work of one call (the sealer's tick). Safe to run concurrently with itself: a
    batch that finds its first entry indexed by someone else is rolled back and the call stops.
    """
    done = 0
    while limit is None or done < limit:
        size = batch if limit is None else min(batch, limit - done)
        try:
            index = _index_batch(db, size)
        except IntegrityError:
            break  # another indexer (a reindex, a second sealer) got there first
        if not index:
            break
        done += len(index)
        if on_batch is not None:
            on_batch(index[-1]["seq"])
        if len(index) < size:
            break
    return done


def _index_batch(db: Database, size: int) -> list[dict[str, Any]]:
    # Read and parse outside the write transaction: on SQLite the write lock is the audit writer's too.
    with db.read.connect() as conn:
        start = indexed_through(conn)
        rows = conn.execute(
            select(audit_entries.c.seq, audit_entries.c.recorded_at, audit_entries.c.entry)
            .where(audit_entries.c.seq > start)
            .order_by(audit_entries.c.seq)
            .limit(size)
        ).all()
        regions = _regions(conn, rows)
    index: list[dict[str, Any]] = []
    terms: list[dict[str, Any]] = []
    expected = start
    for r in rows:
        expected += 1
        if int(r.seq) != expected:
            break  # never index past a gap: the index holds 1..indexed_through
        row, entry_terms = index_rows(int(r.seq), r.recorded_at, r.entry, regions)
        index.append(row)
        terms.extend(entry_terms)
    if not index:
        return index
    with db.write.begin() as conn:
        if indexed_through(conn) != start:
            return []  # another indexer moved on meanwhile
        conn.execute(insert(audit_index), index)
        if terms:
            conn.execute(insert(audit_index_terms), terms)
    return index


def _regions(conn: Connection, rows: Sequence[Any]) -> dict[str, str]:
    """Return the region of every participant the entries of `rows` are about."""
    ids = {m.group(1) for r in rows if (m := _PARTICIPANT.search(r.entry))}
    found: dict[str, str] = {}
    chunk = sorted(ids)
    for i in range(0, len(chunk), 500):
        query = select(participants.c.id, participants.c.region).where(participants.c.id.in_(chunk[i : i + 500]))
        found.update((r.id, r.region) for r in conn.execute(query))
    return found


def rebuild(db: Database, batch: int = BATCH, on_batch: Callable[[int], None] | None = None) -> int:
    """Drop the index and build it again from the log; return how many entries it now holds."""
    with db.write.begin() as conn:
        conn.execute(delete(audit_index_terms))
        conn.execute(delete(audit_index))
    return catch_up(db, batch, on_batch=on_batch)
