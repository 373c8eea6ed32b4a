"""covenant lifecycle retention and legal holds

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lifecycle_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("retention_holder", sa.String(length=128), nullable=True),
        sa.Column("retention_lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lifecycle_state")),
    )
    op.create_table(
        "covenant_revocations",
        sa.Column("covenant_id", sa.String(length=64), nullable=False),
        sa.Column("effective_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("authority_reference", sa.String(length=300), nullable=False),
        sa.Column("organisation", sa.String(length=64), nullable=False),
        sa.Column("acting_user", sa.String(length=128), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("audit_seq", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("covenant_id", name=op.f("pk_covenant_revocations")),
    )
    op.create_table(
        "mandate_withdrawals",
        sa.Column("mandate_id", sa.String(length=64), nullable=False),
        sa.Column("effective_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("authority_reference", sa.String(length=300), nullable=False),
        sa.Column("organisation", sa.String(length=64), nullable=False),
        sa.Column("acting_user", sa.String(length=128), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("audit_seq", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("mandate_id", name=op.f("pk_mandate_withdrawals")),
    )
    op.create_table(
        "legal_holds",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("participant_id", sa.String(length=36), nullable=False),
        sa.Column("region", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("case_reference", sa.String(length=200), nullable=False),
        sa.Column("organisation", sa.String(length=64), nullable=False),
        sa.Column("set_by", sa.String(length=128), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("set_audit_seq", sa.BigInteger(), nullable=True),
        sa.Column("lifted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lifted_by", sa.String(length=128), nullable=True),
        sa.Column("lift_reason", sa.Text(), nullable=True),
        sa.Column("lifted_audit_seq", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["participant_id"], ["participants.id"], name=op.f("fk_legal_holds_participant_id_participants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_legal_holds")),
    )
    with op.batch_alter_table("legal_holds", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_legal_holds_participant_id"), ["participant_id"], unique=False)
    op.create_table(
        "retention_runs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("authority", sa.Text(), nullable=False),
        sa.Column("acting_user", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("destroyed_keys", sa.BigInteger(), nullable=False),
        sa.Column("deleted_records", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retention_runs")),
    )
    op.create_table(
        "retention_destructions",
        sa.Column("participant_id", sa.String(length=36), nullable=False),
        sa.Column("category", sa.String(length=64), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("region", sa.String(length=64), nullable=False),
        sa.Column("rule_id", sa.String(length=64), nullable=False),
        sa.Column("trigger_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("destroyed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("records_deleted", sa.Integer(), nullable=False),
        sa.Column("period_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("period_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("audit_seq", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("participant_id", "category", name=op.f("pk_retention_destructions")),
    )
    with op.batch_alter_table("retention_destructions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_retention_destructions_run_id"), ["run_id"], unique=False)
    # The lifecycle version starts at zero: the configuration alone.
    op.bulk_insert(
        sa.table("lifecycle_state", sa.column("id", sa.Integer), sa.column("version", sa.BigInteger)),
        [{"id": 1, "version": 0}],
    )


def downgrade() -> None:
    with op.batch_alter_table("retention_destructions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_retention_destructions_run_id"))
    op.drop_table("retention_destructions")
    op.drop_table("retention_runs")
    with op.batch_alter_table("legal_holds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_legal_holds_participant_id"))
    op.drop_table("legal_holds")
    op.drop_table("mandate_withdrawals")
    op.drop_table("covenant_revocations")
    op.drop_table("lifecycle_state")
