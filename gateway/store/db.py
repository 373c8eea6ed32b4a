"""Engines for SQLite (embedded, WAL, durable commits) and PostgreSQL (production)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import ExceptionContext, make_url

# SQLite answers these on a handle that can no longer write (opened on a read-only file, a vanished
# directory): the handle never recovers by itself, so it is dropped like a lost connection.
_SQLITE_STALE_HANDLE = ("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_IOERR")


class StorageUnavailable(Exception):
    """The database cannot be reached or written now; the caller answers 503 and nothing leaves."""


def is_storage_outage(exc: BaseException) -> bool:
    """Return whether `exc` says the database is unreachable or unwritable now (not a bug in a query)."""
    if isinstance(exc, StorageUnavailable | sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.TimeoutError):
        return True
    return isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated


@dataclass(frozen=True)
class Database:
    """A read engine and a write engine; they are one engine except on SQLite."""

    url: str
    read: Engine
    write: Engine

    @property
    def is_sqlite(self) -> bool:
        """Return whether this is the embedded SQLite database."""
        return self.read.dialect.name == "sqlite"

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.read.dispose()
        if self.write is not self.read:
            self.write.dispose()


def _sqlite_engine(url: str, immediate: bool) -> Engine:
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": 30, "isolation_level": None},
        pool_size=8 if immediate else 32,
        max_overflow=8 if immediate else 32,
    )

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")  # a commit is on disk before it returns
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA secure_delete=ON")  # destroyed keys are overwritten, not left in free pages
        cur.close()

    @event.listens_for(engine, "handle_error")
    def _drop_stale_handle(context: ExceptionContext) -> None:
        name = getattr(context.original_exception, "sqlite_errorname", "")
        if isinstance(name, str) and name.startswith(_SQLITE_STALE_HANDLE):
            context.is_disconnect = True  # the pool opens fresh handles, which see the file as it is now

    if immediate:

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            # Writers take the write lock up front, so a transaction never fails upgrading a read lock.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    # Readers run in autocommit: each statement reads one consistent WAL snapshot.
    return engine


def connect(url: str) -> Database:
    """Return the Database for `url` (sqlite:///path or postgresql+psycopg://...)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        return Database(url, _sqlite_engine(url, immediate=False), _sqlite_engine(url, immediate=True))
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() in ("psycopg2", "psycopg", ""):
        if parsed.get_driver_name() != "psycopg":
            url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
        engine = create_engine(url, pool_size=20, max_overflow=10, pool_pre_ping=True)
        return Database(url, engine, engine)
    raise ValueError(f"unsupported database URL scheme '{parsed.drivername}' (use sqlite or postgresql)")
