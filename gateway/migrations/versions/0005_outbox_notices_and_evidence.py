"""outbox notices and evidence

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outbox_notices",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("recipient_org", sa.String(length=64), nullable=False),
        sa.Column("reference", sa.String(length=200), nullable=True),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("round_offset", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("leased_by", sa.String(length=128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dead_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=300), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_notices")),
        sa.UniqueConstraint("idempotency_key", name="uq_outbox_notices_idempotency_key"),
    )
    op.create_index(op.f("ix_outbox_notices_recipient_org"), "outbox_notices", ["recipient_org"])
    op.create_index(op.f("ix_outbox_notices_reference"), "outbox_notices", ["reference"])
    op.create_index("ix_outbox_notices_status_next_attempt_at", "outbox_notices", ["status", "next_attempt_at"])
    op.create_table(
        "outbox_attempts",
        sa.Column("notice_id", sa.String(length=36), nullable=False),
        sa.Column("attempt", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("url", sa.String(length=500), nullable=True),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(length=300), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["notice_id"], ["outbox_notices.id"], name=op.f("fk_outbox_attempts_notice_id_outbox_notices")
        ),
        sa.PrimaryKeyConstraint("notice_id", "attempt", name=op.f("pk_outbox_attempts")),
    )
    op.create_table(
        "outbox_acks",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("notice_id", sa.String(length=36), nullable=False),
        sa.Column("organisation", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("acting_user", sa.String(length=128), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("reference", sa.String(length=120), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("audit_seq", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["notice_id"], ["outbox_notices.id"], name=op.f("fk_outbox_acks_notice_id_outbox_notices")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_acks")),
    )
    op.create_index(op.f("ix_outbox_acks_notice_id"), "outbox_acks", ["notice_id"])
    op.create_table(
        "evidence_documents",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("signed_json", sa.Text(), nullable=False),
        sa.Column("html", sa.LargeBinary(), nullable=False),
        sa.Column("pdf", sa.LargeBinary(), nullable=False),
        sa.Column("audit_seq", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evidence_documents")),
        sa.UniqueConstraint("type", "subject", "version", name="uq_evidence_documents_type_subject_version"),
    )


def downgrade() -> None:
    op.drop_table("evidence_documents")
    op.drop_index(op.f("ix_outbox_acks_notice_id"), table_name="outbox_acks")
    op.drop_table("outbox_acks")
    op.drop_table("outbox_attempts")
    op.drop_index("ix_outbox_notices_status_next_attempt_at", table_name="outbox_notices")
    op.drop_index(op.f("ix_outbox_notices_reference"), table_name="outbox_notices")
    op.drop_index(op.f("ix_outbox_notices_recipient_org"), table_name="outbox_notices")
    op.drop_table("outbox_notices")
