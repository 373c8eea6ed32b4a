"""Alembic migrations against SQLite and PostgreSQL: they build exactly the schema the code declares."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, MetaData, String, inspect, select

from gateway.store.db import Database, connect
from gateway.store.migrate import alembic_config, upgrade
from gateway.store.tables import audit_head, metadata


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = connect(database_url)
    yield database
    database.dispose()


def differences(database: Database, declared: MetaData = metadata) -> list[Any]:
    with database.read.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
        return list(compare_metadata(context, declared))


def run(database: Database, direction: str, revision: str) -> None:
    cfg = alembic_config(database)
    with database.write.begin() as conn:
        cfg.attributes["connection"] = conn
        getattr(command, direction)(cfg, revision)


def current_revision(database: Database) -> str | None:
    with database.read.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision(database: Database) -> str | None:
    return ScriptDirectory.from_config(alembic_config(database)).get_current_head()


def gateway_tables(database: Database) -> set[str]:
    return set(inspect(database.read).get_table_names()) - {"alembic_version"}


def test_the_migrated_schema_matches_the_declared_tables(db: Database) -> None:
    assert differences(db) == []


def test_the_comparison_notices_a_column_the_migrations_lack(db: Database) -> None:
    declared = MetaData(naming_convention=metadata.naming_convention)
    for table in metadata.sorted_tables:
        table.to_metadata(declared)
    declared.tables["records"].append_column(Column("note", String(64), nullable=True))
    assert [d[:3] for d in differences(db, declared)] == [("add_column", None, "records")]


def test_a_migrated_database_is_at_the_single_head_revision(db: Database) -> None:
    assert current_revision(db) == head_revision(db)
    assert gateway_tables(db) == set(metadata.tables)


def test_the_audit_head_starts_at_sequence_zero_with_an_empty_chain(db: Database) -> None:
    with db.read.connect() as conn:
        rows = conn.execute(select(audit_head)).all()
    assert len(rows) == 1
    assert rows[0].id == 1
    assert rows[0].seq == 0
    assert bytes(rows[0].chain_hash) == bytes(32)


def test_downgrade_to_base_removes_every_table_and_upgrade_restores_them(db: Database) -> None:
    run(db, "downgrade", "base")
    assert gateway_tables(db) == set()
    assert current_revision(db) is None

    upgrade(db)
    assert current_revision(db) == head_revision(db)
    assert differences(db) == []
    with db.read.connect() as conn:
        assert [(r.id, r.seq) for r in conn.execute(select(audit_head))] == [(1, 0)]


def test_upgrading_an_up_to_date_database_changes_nothing(db: Database) -> None:
    upgrade(db)
    assert current_revision(db) == head_revision(db)
    with db.read.connect() as conn:
        assert len(conn.execute(select(audit_head)).all()) == 1
