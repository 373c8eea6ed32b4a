"""PostgreSQL for tests: a migrated template database, cloned per test (fast, isolated)."""

from __future__ import annotations

import os
import uuid

import psycopg

ADMIN_DSN = os.environ.get("GATEWAY_TEST_PG_DSN", "host=127.0.0.1 port=5432 user=postgres dbname=postgres")
TEMPLATE = f"gw_template_{os.getpid()}"


def reachable() -> str | None:
    """Return None when PostgreSQL answers, else the reason it does not."""
    try:
        with psycopg.connect(ADMIN_DSN, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        return None
    except psycopg.Error as exc:
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"


def _admin(sql: str) -> None:
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(sql)


def url_for(name: str) -> str:
    """Return the SQLAlchemy URL of database `name` on the test server."""
    params = dict(part.split("=", 1) for part in ADMIN_DSN.split())
    user = params.get("user", "postgres")
    host, port = params.get("host", "127.0.0.1"), params.get("port", "5432")
    return f"postgresql+psycopg://{user}@{host}:{port}/{name}"


def create_template() -> None:
    """Create and migrate the template database this test process clones."""
    from gateway.store.db import connect
    from gateway.store.migrate import upgrade

    _admin(f'DROP DATABASE IF EXISTS "{TEMPLATE}"')
    _admin(f'CREATE DATABASE "{TEMPLATE}"')
    db = connect(url_for(TEMPLATE))
    upgrade(db)
    db.dispose()


def clone() -> str:
    """Return the name of a fresh database cloned from the template."""
    name = f"gw_test_{uuid.uuid4().hex[:12]}"
    _admin(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"')
    return name


def drop(name: str) -> None:
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
