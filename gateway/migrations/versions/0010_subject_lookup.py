"""subject lookup: a blind index of identifying fields, for answering access requests

Revision ID: 0010
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subject_index",
        sa.Column("participant_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("category", sa.String(length=64), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["participant_id"], ["participants.id"], name=op.f("fk_subject_index_participant_id_participants")
        ),
        sa.PrimaryKeyConstraint("participant_id", "kind", name=op.f("pk_subject_index")),
    )
    op.create_index(op.f("ix_subject_index_digest"), "subject_index", ["digest"])


def downgrade() -> None:
    op.drop_index(op.f("ix_subject_index_digest"), table_name="subject_index")
    op.drop_table("subject_index")
