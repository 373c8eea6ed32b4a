"""the officer's derived search index over the audit log

Revision ID: 0011
Revises: 0007

Derived data: created empty; the sealer fills it behind the log (or `gateway audit reindex`).
The log's own secondary indexes go: appends pay only for the primary key from now on.
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


_LOG_INDEXES = {
    "ix_audit_entries_trace_id": "trace_id",
    "ix_audit_entries_participant_id": "participant_id",
    "ix_audit_entries_organisation": "organisation",
}


def upgrade() -> None:
    for name in _LOG_INDEXES:
        op.drop_index(name, table_name="audit_entries")
    op.create_table(
        "audit_index",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("organisation", sa.String(length=64), nullable=True),
        sa.Column("participant_id", sa.String(length=36), nullable=True),
        sa.Column("participant_region", sa.String(length=64), nullable=True),
        sa.Column("purpose", sa.String(length=64), nullable=True),
        sa.Column("decision", sa.String(length=8), nullable=False),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.Column("region", sa.String(length=64), nullable=True),
        sa.Column("trace_id", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_index")),
    )
    op.create_index("ix_audit_index_organisation_seq", "audit_index", ["organisation", "seq"])
    op.create_index("ix_audit_index_participant_seq", "audit_index", ["participant_id", "seq"])
    op.create_index("ix_audit_index_participant_region_seq", "audit_index", ["participant_region", "seq"])
    op.create_index("ix_audit_index_purpose_seq", "audit_index", ["purpose", "seq"])
    op.create_index("ix_audit_index_event_seq", "audit_index", ["event", "seq"])
    op.create_index("ix_audit_index_region_seq", "audit_index", ["region", "seq"])
    op.create_index("ix_audit_index_at", "audit_index", ["at"])
    op.create_index("ix_audit_index_trace_id", "audit_index", ["trace_id"])
    op.create_table(
        "audit_index_terms",
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint("kind", "value", "seq", name=op.f("pk_audit_index_terms")),
    )


def downgrade() -> None:
    op.drop_table("audit_index_terms")
    op.drop_index("ix_audit_index_trace_id", table_name="audit_index")
    op.drop_index("ix_audit_index_at", table_name="audit_index")
    op.drop_index("ix_audit_index_region_seq", table_name="audit_index")
    op.drop_index("ix_audit_index_event_seq", table_name="audit_index")
    op.drop_index("ix_audit_index_purpose_seq", table_name="audit_index")
    op.drop_index("ix_audit_index_participant_region_seq", table_name="audit_index")
    op.drop_index("ix_audit_index_participant_seq", table_name="audit_index")
    op.drop_index("ix_audit_index_organisation_seq", table_name="audit_index")
    op.drop_table("audit_index")
    for name, column in _LOG_INDEXES.items():
        op.create_index(name, "audit_entries", [column])
