"""The database schema (SQLAlchemy Core). Migrations in gateway/migrations mirror it exactly."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as UTC and always returns them aware (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are never stored")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        moment: datetime = value
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

participants = Table(
    "participants",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("region", String(64), nullable=False, index=True),
    Column("registered_by", String(64), nullable=False),
    Column("registered_at", UTCDateTime(), nullable=False),
)

pseudonyms = Table(
    "pseudonyms",
    metadata,
    Column("organisation", String(64), primary_key=True),
    Column("pseudonym", String(32), primary_key=True),
    Column("participant_id", String(36), ForeignKey("participants.id"), nullable=False),
    UniqueConstraint("organisation", "participant_id", name="uq_pseudonyms_organisation_participant"),
)

data_keys = Table(
    "data_keys",
    metadata,
    Column("participant_id", String(36), ForeignKey("participants.id"), primary_key=True),
    Column("category", String(64), primary_key=True),
    Column("wrapped_key", LargeBinary, nullable=True),  # NULL once destroyed (crypto-shredded)
    Column("kek_id", String(16), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("destroyed_at", UTCDateTime(), nullable=True),
)

records = Table(
    "records",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("participant_id", String(36), ForeignKey("participants.id"), nullable=False),
    Column("category", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("ciphertext", LargeBinary, nullable=False),
    Column("source_organisation", String(64), nullable=False),
    Column("written_at", UTCDateTime(), nullable=False),
    Column("audit_seq", BigInteger, nullable=False),
    UniqueConstraint("participant_id", "category", "version", name="uq_records_participant_category_version"),
)

audit_entries = Table(
    "audit_entries",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("recorded_at", UTCDateTime(), nullable=False),
    Column("entry", Text, nullable=False),  # canonical JSON: the exact bytes that are hashed
    Column("leaf_hash", LargeBinary(32), nullable=False),
    Column("chain_hash", LargeBinary(32), nullable=False),
    Column("trace_id", String(32), nullable=False),
    Column("organisation", String(64), nullable=True),
    Column("participant_id", String(36), nullable=True),
    Column("decision", String(8), nullable=False),
)
Index("ix_audit_entries_trace_id", audit_entries.c.trace_id)
Index("ix_audit_entries_participant_id", audit_entries.c.participant_id)
Index("ix_audit_entries_organisation", audit_entries.c.organisation)

audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("chain_hash", LargeBinary(32), nullable=False),
)

db_meta = Table(
    "gateway_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)
