"""The audit appender: every decision is durably committed before any data leaves.

Group commit: callers enqueue entries and wait on a future; one writer thread takes everything that
is queued, appends it in one transaction and commits, then resolves the futures. While a commit is
running, new entries collect; as soon as the writer is idle it flushes again (no fixed timer). No
future resolves before the COMMIT of its entries has returned.

Batched calls (`submit_many`, `append_many`, `append_many_async`): the entries of one call are one
queue item with one future. They are committed in one transaction, all or nothing, and get consecutive
sequence numbers in the order given: a call is never split, so a call larger than `max_batch` is a
transaction of its own (callers with very many entries and a wish for partial progress split them).

Order and hash chain: the batch locks the single `audit_head` row (SELECT ... FOR UPDATE on
PostgreSQL; SQLite's BEGIN IMMEDIATE write lock), so several gateway processes on one PostgreSQL
produce one gap-free sequence with one chain. A failed batch rolls back as a whole and each caller
gets AuditUnavailable (and answers 503 without data).

The write path is on the raw driver: the writer thread keeps one DB-API connection of the write
engine for as long as it works (dropped and reopened after any failure), and a batch is one locked
head read, one prepared INSERT (`executemany` on SQLite; on PostgreSQL one INSERT over unnest()ed
arrays for a few entries, a binary COPY for many), one head update and the commit: no SQLAlchemy
statement processing per batch. Async callers wait on a plain future of their own event loop,
resolved once per batch per loop; their timeouts share one timer per loop instead of one per call.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import structlog

from gateway.audit.waiting import LoopDeadlines, Waiter, settle
from gateway.store.db import Database
from gateway.store.tables import audit_entries

log = structlog.get_logger("gateway.audit")

LEAF_PREFIX = b"\x00"  # RFC 9162 section 2.1.1: leaf hashes are SHA-256(0x00 || entry)

Entry = dict[str, Any]


def canonical(entry: dict[str, Any]) -> bytes:
    """Return the canonical bytes of an entry (sorted keys, compact, UTF-8): what is hashed."""
    return orjson.dumps(entry, option=orjson.OPT_SORT_KEYS)


def leaf_hash(entry_bytes: bytes) -> bytes:
    """Return the RFC 9162 leaf hash of an entry."""
    return hashlib.sha256(LEAF_PREFIX + entry_bytes).digest()


def chain_hash(previous: bytes, leaf: bytes) -> bytes:
    """Return the chain hash that links an entry's leaf hash to everything before it."""
    return hashlib.sha256(previous + leaf).digest()


class AuditUnavailable(Exception):
    """The audit store could not durably record an entry; nothing may be released."""


@dataclass(frozen=True, slots=True)
class Appended:
    seq: int
    leaf_hash: bytes


Outcome = Appended | list[Appended] | BaseException


AnyFuture = Future[Any] | asyncio.Future[Any] | Waiter


@dataclass(slots=True)
class _Pending:
    """One caller's queued entries: one entry, or (`many`) the tuple of entries of one batched call."""

    entries: Any  # Entry, or tuple[Entry, ...] when `many`
    size: int
    recorded_at: datetime
    future: AnyFuture
    many: bool
    loop: asyncio.AbstractEventLoop | None = None  # set when `future` is a loop future


def _unavailable(exc: BaseException) -> AuditUnavailable:
    return AuditUnavailable(str(exc) or type(exc).__name__)


class AuditWriter:
    """Appends entries in durable batches from one background thread."""

    def __init__(self, db: Database, max_batch: int = 2048) -> None:
        self._db = db
        self._max_batch = max_batch
        self._queue: deque[_Pending] = deque()
        # A plain lock for the queue, and a second one the writer sleeps on (released to wake it):
        # cheaper per entry than a Condition, whose notify() is Python code.
        self._lock = threading.Lock()
        self._wake = threading.Lock()
        self._wake.acquire()
        self._sleeping = False
        self._closed = False
        self._deadlines: dict[asyncio.AbstractEventLoop, LoopDeadlines] = {}
        self._conn: Any = None  # the writer thread's DB-API connection (a pool-proxied one)
        self._sqlite = db.is_sqlite
        # The column type's own conversion for this dialect (SQLite stores a fixed text format).
        dialect = db.write.dialect
        self._stamp = audit_entries.c.recorded_at.type.dialect_impl(dialect).bind_processor(dialect)
        self.batches = 0
        self.appended = 0
        # Called after each committed batch with its size and commit seconds (the /metrics endpoint).
        self.observer: Callable[[int, float], None] | None = None
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        """Return whether the writer takes entries (its thread runs and it is not closed)."""
        return self._thread.is_alive() and not self._closed

    # --- callers ------------------------------------------------------------------------------------

    def submit(self, entry: Entry, recorded_at: datetime) -> Future[Appended]:
        """Queue an entry; the future resolves once it is committed (or fails with AuditUnavailable)."""
        future: Future[Appended] = Future()
        if not self._enqueue(_Pending(entry, 1, recorded_at, future, False)):
            future.set_exception(AuditUnavailable("the audit writer is closed"))
        return future

    def submit_many(self, entries: Sequence[Entry], recorded_at: datetime) -> Future[list[Appended]]:
        """Queue entries as one call: the future resolves, once they are all committed, to their
        consecutive `Appended` in the order given (or fails with AuditUnavailable: none is logged)."""
        future: Future[list[Appended]] = Future()
        if not entries:
            future.set_result([])
        elif not self._enqueue(_Pending(tuple(entries), len(entries), recorded_at, future, True)):
            future.set_exception(AuditUnavailable("the audit writer is closed"))
        return future

    def _enqueue(self, pending: _Pending) -> bool:
        with self._lock:
            if self._closed:
                return False
            self._queue.append(pending)
            if self._sleeping:
                self._sleeping = False
                self._wake.release()
        return True

    def append(self, entry: Entry, recorded_at: datetime, timeout: float = 5.0) -> Appended:
        """Append one entry and return once it is durably committed."""
        result: Appended = self._wait(entry, 1, recorded_at, False, timeout)
        return result

    def append_many(self, entries: Sequence[Entry], recorded_at: datetime, timeout: float = 30.0) -> list[Appended]:
        """Append entries as one call (consecutive, all or nothing); return once they are committed."""
        if not entries:
            return []
        result: list[Appended] = self._wait(tuple(entries), len(entries), recorded_at, True, timeout)
        return result

    async def append_async(self, entry: Entry, recorded_at: datetime, timeout: float = 5.0) -> Appended:
        """Append one entry; resume once it is durably committed, without holding a thread."""
        result: Appended = await self._wait_async(entry, 1, recorded_at, False, timeout)
        return result

    async def append_many_async(
        self, entries: Sequence[Entry], recorded_at: datetime, timeout: float = 30.0
    ) -> list[Appended]:
        """Append entries as one call (consecutive, all or nothing); resume once they are committed."""
        if not entries:
            return []
        result: list[Appended] = await self._wait_async(tuple(entries), len(entries), recorded_at, True, timeout)
        return result

    def _wait(self, entries: Any, size: int, recorded_at: datetime, many: bool, timeout: float) -> Any:
        """Queue one call and block this thread until it is committed; fail closed on anything else."""
        waiter = Waiter()
        if not self._enqueue(_Pending(entries, size, recorded_at, waiter, many)):
            raise AuditUnavailable("the audit writer is closed")
        try:
            return waiter.wait(timeout)
        except AuditUnavailable:
            raise
        except Exception as exc:  # a timeout or a database error: fail closed
            raise _unavailable(exc) from exc

    async def _wait_async(self, entries: Any, size: int, recorded_at: datetime, many: bool, timeout: float) -> Any:
        """Queue one call and suspend until it is committed; fail closed on anything else."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        # Watched before it is queued: the writer then always finds the deadlines that hold it.
        deadlines = self._deadlines_of(loop)
        deadlines.add(future, timeout)
        if not self._enqueue(_Pending(entries, size, recorded_at, future, many, loop)):
            future.cancel()
            deadlines.prune()
            raise AuditUnavailable("the audit writer is closed")
        try:
            return await future
        except AuditUnavailable:
            raise
        except Exception as exc:  # a timeout or a database error: fail closed
            raise _unavailable(exc) from exc

    def _deadlines_of(self, loop: asyncio.AbstractEventLoop) -> LoopDeadlines:
        # Only this loop's thread touches its own deadlines (the dict itself is shared, atomically).
        deadlines = self._deadlines.get(loop)
        if deadlines is None:
            deadlines = self._deadlines[loop] = LoopDeadlines(loop, self._deadlines)
        return deadlines

    def close(self, timeout: float = 10.0) -> None:
        """Flush what is queued and stop the writer thread."""
        with self._lock:
            self._closed = True
            if self._sleeping:
                self._sleeping = False
                self._wake.release()
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self._drop_connection(close=True)

    # --- the writer thread --------------------------------------------------------------------------

    def _run(self) -> None:
        queue, limit = self._queue, self._max_batch
        while True:
            with self._lock:
                if not queue:
                    if self._closed:
                        return
                    self._sleeping = True
                    batch = None
                else:
                    # Whole calls only: a call is never split, so one larger than the limit goes alone.
                    first = queue.popleft()
                    batch = [first]
                    size = first.size
                    while queue and size + queue[0].size <= limit:
                        pending = queue.popleft()
                        batch.append(pending)
                        size += pending.size
            if batch is None:
                self._wake.acquire()
            else:
                self._flush(batch, size)

    def _flush(self, batch: list[_Pending], size: int) -> None:
        started = time.perf_counter()
        results: list[Appended] | None = None
        failure = ""
        try:
            results = self._write(batch)
        except Exception as exc:
            log.error("audit.append.failed", entries=size, error=type(exc).__name__)
            failure = f"audit store write failed: {type(exc).__name__}"
        else:
            self.batches += 1
            self.appended += size
            if self.observer is not None:
                self.observer(size, time.perf_counter() - started)
        # Only now, after COMMIT returned (or the batch failed), does any caller learn its outcome.
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Outcome]]] = {}
        at = 0
        for pending in batch:
            n = pending.size
            outcome: Outcome
            if results is None:
                outcome = AuditUnavailable(failure)  # one each: callers in other threads raise it
            elif pending.many:
                outcome = results[at : at + n]
            else:
                outcome = results[at]
            at += n
            future = pending.future
            if pending.loop is not None:
                assert isinstance(future, asyncio.Future)
                by_loop.setdefault(pending.loop, []).append((future, outcome))
                continue
            if isinstance(future, Waiter):
                future.resolve(outcome)
                continue
            # A caller that gave up waiting (timeout) has answered 503 already; its entry stays logged.
            with contextlib.suppress(InvalidStateError):
                if isinstance(outcome, BaseException):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)
        for loop, outcomes_of_loop in by_loop.items():
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits any more
                loop.call_soon_threadsafe(settle, outcomes_of_loop, self._deadlines.get(loop))

    def _connection(self) -> Any:
        if self._conn is None:
            self._conn = self._db.write.raw_connection()
        return self._conn

    def _drop_connection(self, close: bool = False) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        with contextlib.suppress(Exception):
            if close:
                conn.close()  # back to the pool
            else:
                conn.invalidate()  # after a failure: never reuse a handle in an unknown state

    def _write(self, batch: list[_Pending]) -> list[Appended]:
        conn = self._connection()
        try:
            results = self._write_on(conn, batch)
        except BaseException:
            with contextlib.suppress(Exception):
                if self._sqlite:
                    conn.cursor().execute("ROLLBACK")
                else:
                    conn.rollback()
            self._drop_connection()
            raise
        return results

    def _write_on(self, conn: Any, batch: list[_Pending]) -> list[Appended]:
        cur = conn.cursor()
        if self._sqlite:
            cur.execute("BEGIN IMMEDIATE")
            cur.execute(_HEAD)
        else:
            cur.execute(_HEAD + " FOR UPDATE")
        head = cur.fetchone()
        seq, chain = int(head[0]), bytes(head[1])
        stamp = self._stamp
        sha256, dumps, sort_keys = hashlib.sha256, orjson.dumps, orjson.OPT_SORT_KEYS
        rows: list[tuple[Any, ...]] = []
        add_row = rows.append
        results: list[Appended] = []
        add_result = results.append
        stamps: dict[datetime, Any] = {}
        for pending in batch:
            at = stamps.get(pending.recorded_at)
            if at is None:
                at = pending.recorded_at.astimezone(UTC)
                at = stamps[pending.recorded_at] = stamp(at) if stamp is not None else at
            for given in pending.entries if pending.many else (pending.entries,):
                seq += 1
                entry = dict(given, seq=seq)
                data = dumps(entry, option=sort_keys)
                leaf = sha256(LEAF_PREFIX + data).digest()
                chain = sha256(chain + leaf).digest()
                add_row(
                    (
                        seq,
                        at,
                        data.decode(),
                        leaf,
                        chain,
                        entry.get("trace_id") or "",
                        entry.get("organisation"),
                        entry.get("participant"),
                        entry["decision"],
                    )
                )
                add_result(Appended(seq, leaf))
        if self._sqlite:
            cur.executemany(_SQLITE_INSERT, rows)
            cur.execute(_SQLITE_HEAD_UPDATE, (seq, chain))
            cur.execute("COMMIT")
        else:
            if len(rows) >= _POSTGRES_COPY_FROM:
                with cur.copy(_POSTGRES_COPY) as copy:
                    copy.set_types(_POSTGRES_TYPES)
                    for row in rows:
                        copy.write_row(row)
                cur.execute(_POSTGRES_HEAD_UPDATE, (seq, chain))
            else:
                # The insert and the head update in one statement: one round trip fewer per batch.
                columns = [list(column) for column in zip(*rows, strict=True)]
                cur.execute(_POSTGRES_INSERT_AND_HEAD, (*columns, seq, chain))
            conn.commit()
        cur.close()
        return results


_HEAD = "SELECT seq, chain_hash FROM audit_head WHERE id = 1"
_SQLITE_HEAD_UPDATE = "UPDATE audit_head SET seq = ?, chain_hash = ? WHERE id = 1"
_POSTGRES_HEAD_UPDATE = "UPDATE audit_head SET seq = %s, chain_hash = %s WHERE id = 1"
_COLUMNS = "seq, recorded_at, entry, leaf_hash, chain_hash, trace_id, organisation, participant_id, decision"
_SQLITE_INSERT = f"INSERT INTO audit_entries ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
_POSTGRES_INSERT = (
    f"INSERT INTO audit_entries ({_COLUMNS}) SELECT * FROM unnest("
    "%b::bigint[], %b::timestamptz[], %b::text[], %b::bytea[], %b::bytea[], %b::varchar[], %b::varchar[], "
    "%b::varchar[], %b::varchar[])"
)
_POSTGRES_INSERT_AND_HEAD = (
    f"WITH appended AS ({_POSTGRES_INSERT}) UPDATE audit_head SET seq = %b, chain_hash = %b WHERE id = 1"
)
# From this many rows a binary COPY costs less than the unnest() INSERT (whose arrays psycopg dumps in
# Python); below it the INSERT's single round trip wins.
_POSTGRES_COPY_FROM = 64
_POSTGRES_COPY = f"COPY audit_entries ({_COLUMNS}) FROM STDIN (FORMAT BINARY)"
_POSTGRES_TYPES = ["int8", "timestamptz", "text", "bytea", "bytea", "varchar", "varchar", "varchar", "varchar"]
