"""The officer's search index: derived from the log, filled behind it, rebuildable at any time.

The log (`audit_entries`) stays append-only and minimal on the write path. The columns an officer
searches on (organisation, participant, purpose, decision, event, reason, region, time, trace id)
are copied from each entry's canonical JSON into `audit_index`, and the entry's `regions` and listed
`participants` into `audit_index_terms`, and counted per time block in `audit_index_counts`
(`gateway/audit/counts.py`), by the sealer in batches after it seals (on PostgreSQL only
the elected sealer), or all at once by `gateway audit reindex`. Nothing here is evidence: the index
can be dropped and rebuilt from the log, and every officer query reads the entries themselves.

The index holds entries 1..`indexed_through` without gaps (each batch is one transaction, in order);
queries answer from the index up to there and scan the log beyond it (the tail), so an answer is
always complete, whatever the index's lag.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import orjson
from sqlalchemy import Connection, delete, func, select
from sqlalchemy.exc import IntegrityError

from gateway.audit import bulk, counts
from gateway.store.db import Database
from gateway.store.tables import (
    audit_entries,
    audit_head,
    audit_index,
    audit_index_counts,
    audit_index_terms,
    participants,
)

BATCH = 5_000
# While the gateway serves, the sealer indexes in short transactions: on SQLite the write lock is the
# audit writer's too, so a 5,000-row batch held every audited read up for 50-130 ms at each tick; 500
# rows hold it for a few ms (one more commit per 500 entries is cheap next to that).
LIVE_BATCH = 500
# pg_advisory_xact_lock key of the index's writers: the first 8 bytes of SHA-256("lvv-gateway audit index").
INDEX_LOCK_KEY = 0x2D53_A9C7_C448_9A52
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = datetime(1970, 1, 1)
REGION, PARTICIPANT = "region", "participant"


def micros(moment: datetime) -> int:
    """Return an aware moment as whole microseconds since the epoch (the index's `at`)."""
    delta = moment.astimezone(UTC) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _text(value: Any, size: int) -> str | None:
    return value[:size] if isinstance(value, str) else None


IndexRow = tuple[int, int, str | None, str | None, str | None, str | None, str, str, str | None, str | None, str]


def index_rows(
    seq: int, at: int, data: dict[str, Any], regions: dict[str, str] | None = None
) -> tuple[IndexRow, list[tuple[str, str, int]], counts.Key]:
    """Return the index row, the term rows and the count signature of one parsed entry recorded at `at`
    (microseconds since the epoch; `regions`: participant id -> region)."""
    return _rows(_fields(seq, at, data), regions or {})


# What the index takes from one entry, before the participant's region is known: (index row without
# the region, region terms, listed participants). A batch keeps these, not the parsed entries.
_Fields = tuple[IndexRow, list[str], list[str]]


def _fields(seq: int, at: int, data: dict[str, Any]) -> _Fields:
    participant = _text(data.get("participant"), 36)
    row: IndexRow = (
        seq,
        at,
        _text(data.get("organisation"), 64),
        participant,
        None,
        _text(data.get("purpose"), 64),
        str(data.get("decision", ""))[:8],
        str(data.get("event", ""))[:64],
        _text(data.get("reason"), 64),
        _text(data.get("region"), 64),
        str(data.get("trace_id") or "")[:32],
    )
    # A participant filter matches a listing only when the entry is about no one participant.
    listed = _members(data.get("participants")) if not participant else []
    return row, _members(data.get("regions")), listed


def _rows(fields: _Fields, regions: dict[str, str]) -> tuple[IndexRow, list[tuple[str, str, int]], counts.Key]:
    row, region_terms, listed = fields
    seq, at, organisation, participant, _, purpose, decision, event, reason, region, trace = row
    participant_region = regions.get(participant) if participant else None
    if participant_region is not None:
        row = (seq, at, organisation, participant, participant_region, purpose, decision, event, reason, region, trace)
    terms = [(REGION, value, seq) for value in region_terms]
    if listed:
        terms += [(PARTICIPANT, value, seq) for value in listed]
    key: counts.Key = (
        organisation,
        participant_region,
        region,
        counts.regions_text(region_terms) if region_terms else "",
        purpose,
        decision,
        event,
        reason,
    )
    return row, terms, key


def _members(values: Any) -> list[str]:
    """Return the distinct indexable strings of a list member of an entry, sorted (none if not a list)."""
    if not isinstance(values, list) or not values:
        return []
    return sorted({v for v in values if isinstance(v, str) and len(v) <= 64})


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
    db: Database,
    batch: int = BATCH,
    limit: int | None = None,
    on_batch: Callable[[int], None] | None = None,
    max_signatures: int = counts.MAX_SIGNATURES,
) -> int:
    """Index (and count) entries committed since the index's last one, `batch` per transaction; return
    how many.

    `limit` caps the work of one call (the sealer's tick). Safe to run concurrently with itself: a
    batch that finds its first entry indexed by someone else is rolled back and the call stops.
    """
    done = 0
    while limit is None or done < limit:
        size = batch if limit is None else min(batch, limit - done)
        try:
            index = _index_batch(db, size, max_signatures)
        except IntegrityError:
            break  # another indexer (a reindex, a second sealer) got there first
        if not index:
            break
        done += len(index)
        if on_batch is not None:
            on_batch(index[-1][0])
        if len(index) < size:
            break
    return done


def _index_batch(db: Database, size: int, max_signatures: int) -> list[IndexRow]:
    # Read and parse outside the write transaction: on SQLite the write lock is the audit writer's too.
    # The raw driver, not SQLAlchemy's statements: this runs on the gateway's own process, under load.
    sqlite = db.is_sqlite
    with db.read.connect() as conn:
        start = indexed_through(conn)
        found = conn.exec_driver_sql(_sql(_SELECT_ENTRIES, sqlite), (start, size)).fetchall()
        fields: list[_Fields] = []
        moment = _moment_reader(db)
        expected = start
        for seq, recorded_at, entry in found:
            expected += 1
            if int(seq) != expected:
                break  # never index past a gap: the index holds 1..indexed_through
            fields.append(_fields(expected, moment(recorded_at), orjson.loads(entry)))
        del found
        regions = _regions(conn, {f[0][3] for f in fields if f[0][3]})
    index: list[IndexRow] = []
    terms: list[tuple[str, str, int]] = []
    keyed: Counter[tuple[int, counts.Key]] = Counter()
    for entry_fields in fields:
        row, entry_terms, key = _rows(entry_fields, regions)
        index.append(row)
        if entry_terms:
            terms += entry_terms
        keyed[(row[1] // counts.DAY, key)] += 1
    if not index:
        return index
    with db.write.begin() as conn:
        _exclusive(conn)
        if indexed_through(conn) != start:
            return []  # another indexer moved on meanwhile
        bulk.insert_rows(conn, "audit_index", _INDEX_COLUMNS, index)
        if terms:
            bulk.insert_rows(conn, "audit_index_terms", _TERM_COLUMNS, terms)
        counts.add(conn, keyed, max_signatures)
    return index


_SELECT_ENTRIES = "SELECT seq, recorded_at, entry FROM audit_entries WHERE seq > ? ORDER BY seq LIMIT ?"
_INDEX_COLUMNS = {
    "seq": "bigint",
    "at": "bigint",
    "organisation": "varchar",
    "participant_id": "varchar",
    "participant_region": "varchar",
    "purpose": "varchar",
    "decision": "varchar",
    "event": "varchar",
    "reason": "varchar",
    "region": "varchar",
    "trace_id": "varchar",
}
_TERM_COLUMNS = {"kind": "varchar", "value": "varchar", "seq": "bigint"}


def _exclusive(conn: Connection) -> None:
    """Serialise the index's writers until this transaction ends (SQLite's write lock does already): a
    batch checks where the index stands and extends it, or a rebuild empties it, never both at once."""
    if conn.dialect.name != "sqlite":
        conn.exec_driver_sql("SELECT pg_advisory_xact_lock(%s)", (INDEX_LOCK_KEY,))


def _sql(statement: str, sqlite: bool) -> str:
    return statement if sqlite else statement.replace("?", "%s")


def _moment_reader(db: Database) -> Callable[[Any], int]:
    """Return a function from a stored `recorded_at` value to microseconds since the epoch, read exactly
    as `UTCDateTime` reads it (SQLite keeps text: the usual spelling is parsed directly)."""
    dialect = db.read.dialect
    process = audit_entries.c.recorded_at.type.dialect_impl(dialect).result_processor(dialect, None)

    def read(value: Any) -> int:
        if isinstance(value, str) and len(value) == 26 and value[10] == " " and value[19] == ".":
            delta = datetime.fromisoformat(value) - _NAIVE_EPOCH  # naive UTC, as SQLAlchemy writes it
            return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
        moment = cast(datetime, process(value) if process is not None else value)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return micros(moment)

    return read


def _regions(conn: Connection, ids: set[str]) -> dict[str, str]:
    """Return the region of every participant in `ids` that is registered."""
    found: dict[str, str] = {}
    chunk = sorted(i for i in ids if len(i) <= 36)
    for i in range(0, len(chunk), 500):
        query = select(participants.c.id, participants.c.region).where(participants.c.id.in_(chunk[i : i + 500]))
        found.update((r.id, r.region) for r in conn.execute(query))
    return found


def rebuild(
    db: Database,
    batch: int = BATCH,
    on_batch: Callable[[int], None] | None = None,
    max_signatures: int = counts.MAX_SIGNATURES,
) -> int:
    """Drop the index and its counts and build them again from the log; return how many entries it holds."""
    with db.write.begin() as conn:
        _exclusive(conn)
        conn.execute(delete(audit_index_counts))
        conn.execute(delete(audit_index_terms))
        conn.execute(delete(audit_index))
    return catch_up(db, batch, on_batch=on_batch, max_signatures=max_signatures)
