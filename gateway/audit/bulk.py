"""Bulk inserts on the raw driver, for the derived tables the sealer fills behind the log."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection


def insert_rows(conn: Connection, table: str, columns: dict[str, str], rows: list[Any], on_conflict: str = "") -> None:
    """Insert `rows` (tuples in the order of `columns`: name -> PostgreSQL type) in one statement on the
    raw driver: executemany on SQLite, one INSERT over unnest()ed arrays on PostgreSQL (as the writer)."""
    names = ", ".join(columns)
    if conn.dialect.name == "sqlite":
        marks = ", ".join("?" * len(columns))
        conn.exec_driver_sql(f"INSERT INTO {table} ({names}) VALUES ({marks}) {on_conflict}", rows)
        return
    arrays = ", ".join(f"%b::{kind}[]" for kind in columns.values())
    conn.exec_driver_sql(
        f"INSERT INTO {table} ({names}) SELECT * FROM unnest({arrays}) {on_conflict}",
        tuple(list(column) for column in zip(*rows, strict=True)),
    )
