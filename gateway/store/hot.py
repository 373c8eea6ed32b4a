"""The hot read path on SQLite: the raw driver, one long-lived read-only connection per thread.

A read of a participant runs two queries (pseudonym to participant; the latest record and data key of
each permitted category). Through SQLAlchemy's execution layer each costs 10-15x the driver's own work
(a pool checkout, parameter processing, a result object); here the same statements, compiled once from
the SQLAlchemy Core statements that stay the single definition, run on a plain `sqlite3` connection
that each thread (in the server: the event loop's thread) keeps open.

The connection is opened with `PRAGMA query_only`: it cannot write. A driver error that says the
database cannot be read now (`sqlite3.OperationalError`: a read-only or vanished file, a full disk, an
I/O error) drops the thread's connection, so the next read opens a fresh one that sees the file as it is
then, and is raised as `StorageUnavailable` (503, nothing released), as through SQLAlchemy.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Select
from sqlalchemy.engine import make_url

from gateway.store.db import Database, StorageUnavailable


class CompiledRead:
    """One SELECT compiled once for SQLite: its SQL, its parameters in order, and its columns' converters.

    An expanding parameter (`bindparam(..., expanding=True)`, an IN list) gets its placeholders per
    length of the list; those SQL texts are kept too.
    """

    def __init__(self, statement: Select[Any], dialect: Any) -> None:
        if not dialect.positional:
            raise ValueError("CompiledRead is for a driver with positional parameters (sqlite3)")
        compiled = statement.compile(dialect=dialect)
        self._sql = compiled.string
        self._names: tuple[str, ...] = tuple(compiled.positiontup or ())
        self._expanding = frozenset(n for n in self._names if f"__[POSTCOMPILE_{n}]" in self._sql)
        self._texts: dict[tuple[int, ...], str] = {}
        converters: list[Callable[[Any], Any] | None] = [
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in statement.selected_columns
        ]
        self._convert = [(i, f) for i, f in enumerate(converters) if f is not None]

    def sql(self, params: dict[str, Any]) -> tuple[str, list[Any]]:
        """Return the SQL text and the positional values for `params`."""
        if not self._expanding:
            return self._sql, [params[n] for n in self._names]
        lengths = tuple(len(params[n]) for n in sorted(self._expanding))
        text = self._texts.get(lengths)
        if text is None:
            text = self._sql
            for name in sorted(self._expanding):
                # An empty list selects nothing, as SQLAlchemy renders it.
                marks = ", ".join("?" * len(params[name])) or "SELECT 1 WHERE 1 = 0"
                text = text.replace(f"__[POSTCOMPILE_{name}]", marks)
            self._texts[lengths] = text
        values: list[Any] = []
        for name in self._names:
            if name in self._expanding:
                values.extend(params[name])
            else:
                values.append(params[name])
        return text, values

    def convert(self, rows: list[Any]) -> list[tuple[Any, ...]]:
        """Return the rows with each column converted as SQLAlchemy would (aware UTC datetimes, ...)."""
        if not self._convert:
            return rows
        out = []
        for row in rows:
            values = list(row)
            for i, f in self._convert:
                values[i] = f(values[i])
            out.append(tuple(values))
        return out


class HotReads:
    """Raw `sqlite3` read connections, one per thread, for the statements of the hot read path."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: set[sqlite3.Connection] = set()

    @classmethod
    def for_database(cls, db: Database) -> HotReads | None:
        """Return the hot reads of `db` when it is a SQLite file; None otherwise (SQLAlchemy serves)."""
        if not db.is_sqlite:
            return None
        path = make_url(db.url).database
        if not path or path == ":memory:" or path.startswith("file:"):
            return None
        return cls(path)

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self._path, timeout=30, isolation_level=None, check_same_thread=False)
            try:
                conn.execute("PRAGMA busy_timeout=30000")
                conn.execute("PRAGMA query_only=ON")
            except sqlite3.Error:
                conn.close()
                raise
            with self._lock:
                self._open.add(conn)
            self._local.conn = conn
        return conn

    def _drop(self) -> None:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            with self._lock:
                self._open.discard(conn)
            conn.close()

    def rows(self, statement: CompiledRead, params: dict[str, Any]) -> Sequence[tuple[Any, ...]]:
        """Return every row of `statement` for `params`, converted; raise StorageUnavailable on an outage."""
        sql, values = statement.sql(params)
        try:
            fetched = self._connection().execute(sql, values).fetchall()
        except sqlite3.OperationalError as exc:
            self._drop()
            raise StorageUnavailable(f"database read failed: {exc.sqlite_errorname}") from exc
        return statement.convert(fetched)

    def scalar(self, sql: str) -> Any:
        """Return the first column of the one row of a constant statement `sql` (no parameters); raise
        StorageUnavailable on an outage."""
        try:
            row = self._connection().execute(sql).fetchone()
        except sqlite3.OperationalError as exc:
            self._drop()
            raise StorageUnavailable(f"database read failed: {exc.sqlite_errorname}") from exc
        if row is None:
            raise LookupError(f"no row for {sql!r}")  # a broken schema, not an outage (as scalar_one)
        return row[0]

    def close(self) -> None:
        """Close every thread's connection (at shutdown; a later read opens a new one)."""
        with self._lock:
            conns, self._open = self._open, set()
        for conn in conns:
            conn.close()
        self._local = threading.local()
