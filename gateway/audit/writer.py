"""The audit appender: every decision is durably committed before any data leaves.

Group commit: callers enqueue entries and wait on a future; one writer thread takes everything that
is queued, appends it in one transaction and commits, then resolves the futures. While a commit is
running, new entries collect; as soon as the writer is idle it flushes again (no fixed timer).

Order and hash chain: the batch locks the single `audit_head` row (SELECT ... FOR UPDATE on
PostgreSQL; SQLite's BEGIN IMMEDIATE write lock), so several gateway processes on one PostgreSQL
produce one gap-free sequence with one chain. A failed batch rolls back as a whole and each caller
gets the exception (and answers 503 without data).

The write path is on the raw driver: the writer thread keeps one DB-API connection of the write
engine for as long as it works (dropped and reopened after any failure), and a batch is one locked
head read, one prepared INSERT (`executemany` on SQLite, one INSERT over unnest()ed arrays on
PostgreSQL), one head update and the commit: no SQLAlchemy statement processing per batch. Async
callers wait on a plain future of their own event loop, resolved once per batch per loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import structlog

from gateway.store.db import Database
from gateway.store.tables import audit_entries

log = structlog.get_logger("gateway.audit")

LEAF_PREFIX = b"\x00"  # RFC 9162 section 2.1.1: leaf hashes are SHA-256(0x00 || entry)


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


@dataclass(slots=True)
class _Pending:
    entry: dict[str, Any]
    recorded_at: datetime
    future: Future[Appended] | asyncio.Future[Appended]
    loop: asyncio.AbstractEventLoop | None = None  # set when `future` is a loop future


def _settle(outcomes: list[tuple[asyncio.Future[Appended], Appended | BaseException]]) -> None:
    """Resolve loop futures on their own loop (a caller that timed out has cancelled its future)."""
    for future, outcome in outcomes:
        if future.done():
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


class AuditWriter:
    """Appends entries in durable batches from one background thread."""

    def __init__(self, db: Database, max_batch: int = 2048) -> None:
        self._db = db
        self._max_batch = max_batch
        self._queue: deque[_Pending] = deque()
        self._cv = threading.Condition()
        self._closed = False
        self._conn: Any = None  # the writer thread's DB-API connection (a pool-proxied one)
        self._sqlite = db.is_sqlite
        # The column type's own conversion for this dialect (SQLite stores a fixed text format).
        dialect = db.write.dialect
        self._stamp = audit_entries.c.recorded_at.type.dialect_impl(dialect).bind_processor(dialect)
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._thread.start()
        self.batches = 0
        self.appended = 0
        # Called after each committed batch with its size and commit seconds (the /metrics endpoint).
        self.observer: Callable[[int, float], None] | None = None

    @property
    def alive(self) -> bool:
        """Return whether the writer takes entries (its thread runs and it is not closed)."""
        return self._thread.is_alive() and not self._closed

    def submit(self, entry: dict[str, Any], recorded_at: datetime) -> Future[Appended]:
        """Queue an entry; the future resolves once it is committed (or fails with AuditUnavailable)."""
        future: Future[Appended] = Future()
        if not self._enqueue(_Pending(entry, recorded_at, future)):
            future.set_exception(AuditUnavailable("the audit writer is closed"))
        return future

    def _enqueue(self, pending: _Pending) -> bool:
        with self._cv:
            if self._closed:
                return False
            self._queue.append(pending)
            self._cv.notify()
        return True

    def append(self, entry: dict[str, Any], recorded_at: datetime, timeout: float = 5.0) -> Appended:
        """Append one entry and return once it is durably committed."""
        try:
            return self.submit(entry, recorded_at).result(timeout=timeout)
        except AuditUnavailable:
            raise
        except Exception as exc:  # a timeout or a database error: fail closed
            raise AuditUnavailable(str(exc) or type(exc).__name__) from exc

    async def append_async(self, entry: dict[str, Any], recorded_at: datetime, timeout: float = 5.0) -> Appended:
        """Append one entry; resume once it is durably committed, without holding a thread."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Appended] = loop.create_future()
        if not self._enqueue(_Pending(entry, recorded_at, future, loop)):
            raise AuditUnavailable("the audit writer is closed")
        try:
            async with asyncio.timeout(timeout):
                return await future
        except AuditUnavailable:
            raise
        except Exception as exc:  # a timeout or a database error: fail closed
            raise AuditUnavailable(str(exc) or type(exc).__name__) from exc

    def close(self, timeout: float = 10.0) -> None:
        """Flush what is queued and stop the writer thread."""
        with self._cv:
            self._closed = True
            self._cv.notify()
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self._drop_connection(close=True)

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._queue and not self._closed:
                    self._cv.wait()
                if not self._queue and self._closed:
                    return
                batch = [self._queue.popleft() for _ in range(min(len(self._queue), self._max_batch))]
            self._flush(batch)

    def _flush(self, batch: list[_Pending]) -> None:
        started = time.perf_counter()
        outcomes: list[Appended | BaseException]
        try:
            outcomes = list(self._write(batch))
        except Exception as exc:
            log.error("audit.append.failed", entries=len(batch), error=type(exc).__name__)
            outcomes = [AuditUnavailable(f"audit store write failed: {type(exc).__name__}")] * len(batch)
        else:
            self.batches += 1
            self.appended += len(batch)
            if self.observer is not None:
                self.observer(len(batch), time.perf_counter() - started)
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Appended], Appended | BaseException]]] = {}
        for pending, outcome in zip(batch, outcomes, strict=True):
            if pending.loop is not None:
                assert isinstance(pending.future, asyncio.Future)
                by_loop.setdefault(pending.loop, []).append((pending.future, outcome))
                continue
            assert isinstance(pending.future, Future)
            # A caller that gave up waiting (timeout) has answered 503 already; its entry stays logged.
            with contextlib.suppress(InvalidStateError):
                if isinstance(outcome, BaseException):
                    pending.future.set_exception(outcome)
                else:
                    pending.future.set_result(outcome)
        for loop, outcomes_of_loop in by_loop.items():
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits any more
                loop.call_soon_threadsafe(_settle, outcomes_of_loop)

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
        stamps: dict[datetime, Any] = {}
        rows: list[tuple[Any, ...]] = []
        results: list[Appended] = []
        for pending in batch:
            seq += 1
            entry = dict(pending.entry, seq=seq)
            data = canonical(entry)
            leaf = leaf_hash(data)
            chain = chain_hash(chain, leaf)
            at = pending.recorded_at
            if at not in stamps:
                utc = at.astimezone(UTC)
                stamps[at] = stamp(utc) if stamp is not None else utc
            rows.append(
                (
                    seq,
                    stamps[at],
                    data.decode(),
                    leaf,
                    chain,
                    entry.get("trace_id") or "",
                    entry.get("organisation"),
                    entry.get("participant"),
                    entry["decision"],
                )
            )
            results.append(Appended(seq, leaf))
        if self._sqlite:
            cur.executemany(_SQLITE_INSERT, rows)
            cur.execute(_SQLITE_HEAD_UPDATE, (seq, chain))
            cur.execute("COMMIT")
        else:
            cur.execute(_POSTGRES_INSERT, tuple(list(column) for column in zip(*rows, strict=True)))
            cur.execute(_POSTGRES_HEAD_UPDATE, (seq, chain))
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
