"""key epochs

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing data keys keep epoch_id NULL: they stay wrapped by the KEK directly and are read as before.
    with op.batch_alter_table("data_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("epoch_id", sa.String(length=48), nullable=True))
        batch_op.create_index(batch_op.f("ix_data_keys_epoch_id"), ["epoch_id"], unique=False)
    with op.batch_alter_table("retention_destructions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("epoch_id", sa.String(length=48), nullable=True))
    op.create_table(
        "key_epochs",
        sa.Column("epoch_id", sa.String(length=48), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=True),
        sa.Column("keys_moved", sa.Integer(), nullable=False),
        sa.Column("marked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("destroyed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("epoch_id", name=op.f("pk_key_epochs")),
    )


def downgrade() -> None:
    op.drop_table("key_epochs")
    with op.batch_alter_table("retention_destructions", schema=None) as batch_op:
        batch_op.drop_column("epoch_id")
    with op.batch_alter_table("data_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_data_keys_epoch_id"))
        batch_op.drop_column("epoch_id")
