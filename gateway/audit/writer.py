"""The audit appender: every decision is durably committed before any data leaves.

Group commit: callers enqueue entries and wait on a future; one writer thread takes everything that
is queued, appends it in one transaction and commits, then resolves the futures. While a commit is
running, new entries collect; as soon as the writer is idle it flushes again (no fixed timer).

Order and hash chain: the batch locks the single `audit_head` row (SELECT ... FOR UPDATE on
PostgreSQL; SQLite's BEGIN IMMEDIATE write lock), so several gateway processes on one PostgreSQL
produce one gap-free sequence with one chain. A failed batch rolls back as a whole and each caller
gets the exception (and answers 503 without data).
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
from datetime import datetime
from typing import Any

import orjson
import structlog
from sqlalchemy import select, update

from gateway.store.db import Database
from gateway.store.tables import audit_entries, audit_head

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
    future: Future[Appended]


class AuditWriter:
    """Appends entries in durable batches from one background thread."""

    def __init__(self, db: Database, max_batch: int = 2048) -> None:
        self._db = db
        self._max_batch = max_batch
        self._queue: deque[_Pending] = deque()
        self._cv = threading.Condition()
        self._closed = False
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
        with self._cv:
            if self._closed:
                future.set_exception(AuditUnavailable("the audit writer is closed"))
                return future
            self._queue.append(_Pending(entry, recorded_at, future))
            self._cv.notify()
        return future

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
        future = self.submit(entry, recorded_at)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), timeout)
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
        try:
            results = self._write(batch)
        except Exception as exc:
            log.error("audit.append.failed", entries=len(batch), error=type(exc).__name__)
            failure = AuditUnavailable(f"audit store write failed: {type(exc).__name__}")
            for pending in batch:
                with contextlib.suppress(InvalidStateError):  # the caller gave up waiting
                    pending.future.set_exception(failure)
            return
        self.batches += 1
        self.appended += len(batch)
        if self.observer is not None:
            self.observer(len(batch), time.perf_counter() - started)
        for pending, result in zip(batch, results, strict=True):
            # A caller that gave up waiting (timeout) has answered 503 already; its entry stays logged.
            with contextlib.suppress(InvalidStateError):
                pending.future.set_result(result)

    def _write(self, batch: list[_Pending]) -> list[Appended]:
        with self._db.write.begin() as conn:
            head_query = select(audit_head.c.seq, audit_head.c.chain_hash).where(audit_head.c.id == 1)
            if not self._db.is_sqlite:
                head_query = head_query.with_for_update()
            head = conn.execute(head_query).one()
            seq, chain = int(head.seq), bytes(head.chain_hash)
            # The column type's own conversion for this dialect (SQLite stores a fixed text format).
            recorded_at = audit_entries.c.recorded_at.type
            stamp = recorded_at.dialect_impl(conn.dialect).bind_processor(conn.dialect)
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
                    stamps[at] = stamp(at) if stamp is not None else at
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
            # The hot path of every decision: the driver gets plain rows, without per-row statement
            # processing (SQLite: one executemany; PostgreSQL: one INSERT over unnest()ed arrays).
            if self._db.is_sqlite:
                conn.exec_driver_sql(_SQLITE_INSERT, rows)
            else:
                conn.exec_driver_sql(_POSTGRES_INSERT, tuple(list(column) for column in zip(*rows, strict=True)))
            conn.execute(update(audit_head).where(audit_head.c.id == 1).values(seq=seq, chain_hash=chain))
        return results


_COLUMNS = "seq, recorded_at, entry, leaf_hash, chain_hash, trace_id, organisation, participant_id, decision"
_SQLITE_INSERT = f"INSERT INTO audit_entries ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
_POSTGRES_INSERT = (
    f"INSERT INTO audit_entries ({_COLUMNS}) SELECT * FROM unnest("
    "%b::bigint[], %b::timestamptz[], %b::text[], %b::bytea[], %b::bytea[], %b::varchar[], %b::varchar[], "
    "%b::varchar[], %b::varchar[])"
)
