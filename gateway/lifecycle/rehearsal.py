"""Rehearsal mode: a copy of the database and a simulated clock, so the parties can rehearse the end.

`copy_database` copies every table into a fresh, migrated database and marks it as a copy in
`gateway_meta`; the gateway in rehearsal mode refuses any database without that mark. The simulated
clock lives in the copy's `gateway_meta` too, so the server and the command line share it: it starts
at a given moment and runs on, or stands still and is stepped forward (never back).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import make_url

from gateway.store.db import Database, connect
from gateway.store.migrate import upgrade
from gateway.store.tables import db_meta, metadata

COPY_OF = "rehearsal.copy_of"
COPIED_AT = "rehearsal.copied_at"
CLOCK_AT = "rehearsal.clock_at"  # the simulated moment at CLOCK_ANCHOR
CLOCK_ANCHOR = "rehearsal.clock_anchor"  # real POSIX time when the clock showed CLOCK_AT
CLOCK_RUNNING = "rehearsal.clock_running"  # "true": runs on from CLOCK_AT; "false": stands at CLOCK_AT
SKIP_TABLES = frozenset({"alembic_version"})


class NotARehearsalCopy(Exception):
    """Rehearsal mode was asked for on a database that is not marked as a rehearsal copy."""


def _meta(db: Database) -> dict[str, str]:
    with db.read.connect() as conn:
        return {r.key: r.value for r in conn.execute(select(db_meta).where(db_meta.c.key.like("rehearsal.%")))}


def _put(db: Database, values: dict[str, str]) -> None:
    with db.write.begin() as conn:
        conn.execute(delete(db_meta).where(db_meta.c.key.in_(list(values))))
        conn.execute(insert(db_meta), [{"key": k, "value": v} for k, v in values.items()])


def copy_of(db: Database) -> str | None:
    """Return what the database is a rehearsal copy of, or None when it is not a copy."""
    return _meta(db).get(COPY_OF)


def rehearsal_identity(db: Database) -> str:
    """Return a stable hex id of this rehearsal copy (what it copies and when it was made)."""
    meta = _meta(db)
    basis = f"{meta.get(COPY_OF, '')}|{meta.get(COPIED_AT, '')}".encode()
    return hashlib.sha256(basis).hexdigest()


def _safe_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def copy_database(
    source_url: str,
    target_url: str,
    start: datetime,
    running: bool = True,
    progress: Callable[[str, int], None] | None = None,
    batch: int = 5000,
) -> int:
    """Copy every table of `source_url` into `target_url` (migrated, emptied first), mark it; return rows copied."""
    if make_url(source_url) == make_url(target_url):
        raise ValueError("the rehearsal copy must be another database than its source")
    if start.tzinfo is None:
        raise ValueError("the rehearsal start needs a time zone offset")
    source, target = connect(source_url), connect(target_url)
    try:
        upgrade(target)
        copied = 0
        tables = [t for t in metadata.sorted_tables if t.name not in SKIP_TABLES]
        with target.write.begin() as out:
            for table in reversed(tables):
                out.execute(delete(table))
            with source.read.connect() as src:
                for table in tables:
                    result = src.execution_options(stream_results=True).execute(select(table))
                    while rows := result.fetchmany(batch):
                        out.execute(insert(table), [dict(r._mapping) for r in rows])
                        copied += len(rows)
                    if progress is not None:
                        progress(table.name, copied)
        now = datetime.now(UTC)
        _put(
            target,
            {
                COPY_OF: _safe_url(source_url),
                COPIED_AT: now.isoformat(),
                CLOCK_AT: start.astimezone(UTC).isoformat(),
                CLOCK_ANCHOR: repr(time.time()),
                CLOCK_RUNNING: "true" if running else "false",
            },
        )
        return copied
    finally:
        source.dispose()
        target.dispose()


class RehearsalClock:
    """The simulated clock of a rehearsal copy, kept in its `gateway_meta` (shared by server and CLI)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._lock = threading.Lock()
        self.copy_of = ""
        self._at = datetime.now(UTC)
        self._anchor = time.time()
        self._running = True
        self.sync()

    def sync(self) -> None:
        """Re-read the clock from the database (another process may have stepped it)."""
        meta = _meta(self._db)
        if COPY_OF not in meta:
            raise NotARehearsalCopy("the database is not marked as a rehearsal copy")
        with self._lock:
            self.copy_of = meta[COPY_OF]
            self._at = datetime.fromisoformat(meta[CLOCK_AT]).astimezone(UTC)
            self._anchor = float(meta[CLOCK_ANCHOR])
            self._running = meta.get(CLOCK_RUNNING, "true") == "true"

    def now(self) -> datetime:
        """Return the simulated instant, timezone-aware UTC."""
        return datetime.fromtimestamp(self.timestamp(), UTC)

    def timestamp(self) -> float:
        """Return the simulated instant as POSIX seconds."""
        with self._lock:
            base = self._at.timestamp()
            return base + (time.time() - self._anchor) if self._running else base

    @property
    def running(self) -> bool:
        """Return whether the clock runs on (False: it stands until stepped)."""
        return self._running

    def step(self, to: datetime, running: bool | None = None) -> datetime:
        """Move the simulated clock forward to `to` (never back); return the new moment."""
        if to.tzinfo is None:
            raise ValueError("give the moment with its time zone offset")
        self.sync()
        if to.timestamp() < self.timestamp():
            raise ValueError(f"the rehearsal clock only moves forward; it stands at {self.now().isoformat()}")
        keep_running = self._running if running is None else running
        _put(
            self._db,
            {
                CLOCK_AT: to.astimezone(UTC).isoformat(),
                CLOCK_ANCHOR: repr(time.time()),
                CLOCK_RUNNING: "true" if keep_running else "false",
            },
        )
        self.sync()
        return self.now()

    def describe(self) -> str:
        """Return the plain statement every rehearsal response carries."""
        mode = "running" if self._running else "standing"
        at = self.now().isoformat(timespec="seconds")
        return f"REHEARSAL on a copy of {self.copy_of}; simulated clock {mode} at {at}"


def open_rehearsal(db: Database) -> RehearsalClock:
    """Return the rehearsal clock of `db`; raise NotARehearsalCopy unless `db` is marked as a copy."""
    if copy_of(db) is None:
        raise NotARehearsalCopy(
            "refusing rehearsal mode: the database is not marked as a rehearsal copy "
            "(make one with `gateway rehearsal copy --from URL --to URL --start MOMENT`)"
        )
    return RehearsalClock(db)
