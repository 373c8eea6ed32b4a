"""audit checkpoints and sealer state

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_checkpoints",
        sa.Column("tree_size", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("root_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key_id", sa.String(length=8), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("sealer", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("tree_size", name=op.f("pk_audit_checkpoints")),
    )
    op.create_table(
        "audit_sealer",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("tree_size", sa.BigInteger(), nullable=False),
        sa.Column("peaks", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_sealer")),
    )
    op.create_table(
        "audit_signing_keys",
        sa.Column("public_key", sa.LargeBinary(length=32), nullable=False),
        sa.Column("first_used_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("public_key", name=op.f("pk_audit_signing_keys")),
    )
    # The sealer's state starts at the empty tree; the sealer locks this row while it extends it.
    op.bulk_insert(
        sa.table(
            "audit_sealer",
            sa.column("id", sa.Integer),
            sa.column("tree_size", sa.BigInteger),
            sa.column("peaks", sa.LargeBinary),
        ),
        [{"id": 1, "tree_size": 0, "peaks": b""}],
    )


def downgrade() -> None:
    op.drop_table("audit_signing_keys")
    op.drop_table("audit_sealer")
    op.drop_table("audit_checkpoints")
