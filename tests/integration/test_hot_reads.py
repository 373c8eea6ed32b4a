"""The raw-driver reads of the hot path (gateway.store.hot) give what SQLAlchemy gives, cannot write,
and turn an unreadable database into StorageUnavailable, recovering once it is readable again."""

from __future__ import annotations

import sqlite3
from datetime import UTC
from pathlib import Path

import pytest
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import make_url

from gateway.store.db import StorageUnavailable
from gateway.store.hot import CompiledRead, HotReads
from gateway.store.records import RecordStore, _read_statement
from tests.conftest import Gateway


def sqlalchemy_store(gw: Gateway) -> RecordStore:
    """Return a record store over the same database and keys that reads through SQLAlchemy only."""
    store = RecordStore(gw.container.db, gw.container.store.keys, gw.container.store._pseudonymiser)
    store._hot = None
    return store


def test_the_hot_reads_are_used_on_sqlite_only(gateway: Gateway) -> None:
    hot = HotReads.for_database(gateway.container.db)
    assert (hot is not None) == gateway.container.db.is_sqlite


def test_the_hot_reads_give_what_sqlalchemy_gives(gateway: Gateway) -> None:
    if not gateway.container.db.is_sqlite:
        pytest.skip("PostgreSQL reads go through SQLAlchemy")
    p = gateway.register()
    hot, plain = gateway.container.store, sqlalchemy_store(gateway)
    assert hot._hot is not None
    ref = hot.resolve("amsterdam", p)
    assert ref is not None
    assert ref == plain.resolve("amsterdam", p)
    assert hot.resolve("amsterdam", "p" + "a" * 26) is None
    assert hot.resolve("rotterdam", p) is None  # a pseudonym is its organisation's own
    params = {"pid": ref.id, "categories": ["case_plan", "contact", "identity"]}
    rows, expected = hot._record_rows(params), plain._record_rows(params)
    assert [tuple(r) for r in rows] == [tuple(r) for r in expected]
    assert all(r.written_at.tzinfo is UTC for r in rows)
    assert hot._record_rows({"pid": ref.id, "categories": ["identity"]})[0].category == "identity"
    assert hot._record_rows({"pid": ref.id, "categories": []}) == []


def test_a_statement_is_compiled_once_per_length_of_its_list() -> None:
    statement = CompiledRead(_read_statement(), sqlite.dialect())
    sql, values = statement.sql({"pid": "x", "categories": ["a", "b"]})
    assert values == ["x", "a", "b", "x", "x"]
    assert sql.count("?") == 5
    assert statement.sql({"pid": "y", "categories": ["c", "d"]})[0] is sql


def test_the_hot_connection_cannot_write(gateway: Gateway) -> None:
    hot = HotReads.for_database(gateway.container.db)
    if hot is None:
        pytest.skip("PostgreSQL reads go through SQLAlchemy")
    try:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            hot._connection().execute("DELETE FROM pseudonyms")
    finally:
        hot.close()


def test_an_unreadable_database_is_storage_unavailable_and_the_next_read_recovers(gateway: Gateway) -> None:
    if not gateway.container.db.is_sqlite:
        pytest.skip("PostgreSQL reads go through SQLAlchemy")
    p = gateway.register()
    store = gateway.container.store
    assert store._hot is not None
    expected = store.resolve("amsterdam", p)
    path = Path(make_url(gateway.container.db.url).database or "")
    away = path.parent.with_name(path.parent.name + "-away")
    store._hot.close()  # the next read opens its handle anew, on a path that is then gone
    path.parent.rename(away)
    try:
        with pytest.raises(StorageUnavailable, match="SQLITE_CANTOPEN"):
            store.resolve("amsterdam", p)
    finally:
        away.rename(path.parent)
    assert store.resolve("amsterdam", p) == expected
