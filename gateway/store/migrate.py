"""Apply Alembic migrations programmatically (`gateway db upgrade`)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from gateway.store.db import Database

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(db: Database) -> Config:
    """Return an Alembic config that points at the packaged migrations."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", db.url.replace("%", "%%"))
    return cfg


def upgrade(db: Database, revision: str = "head") -> None:
    """Bring the schema of `db` up to `revision`."""
    cfg = alembic_config(db)
    with db.write.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
