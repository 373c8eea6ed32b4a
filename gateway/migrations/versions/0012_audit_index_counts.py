"""counts of indexed audit entries per time block and signature, for the officer's counts

Revision ID: 0012
Revises: 0011

Derived data, filled in the same transaction as the index: the index is emptied here so that the
sealer (or `gateway audit reindex`) fills both from the log; until then searches read the log itself.
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_index_counts",
        sa.Column("level", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("block", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("sig", sa.String(length=32), nullable=False),
        sa.Column("organisation", sa.String(length=64), nullable=True),
        sa.Column("participant_region", sa.String(length=64), nullable=True),
        sa.Column("region", sa.String(length=64), nullable=True),
        sa.Column("regions", sa.Text(), nullable=False),
        sa.Column("purpose", sa.String(length=64), nullable=True),
        sa.Column("decision", sa.String(length=8), nullable=False),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("level", "block", "sig", name=op.f("pk_audit_index_counts")),
    )
    # The counts must cover exactly the entries the index holds: start both again from the log.
    op.execute("DELETE FROM audit_index_terms")
    op.execute("DELETE FROM audit_index")


def downgrade() -> None:
    op.drop_table("audit_index_counts")
