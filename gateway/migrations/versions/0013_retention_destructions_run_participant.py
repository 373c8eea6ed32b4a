"""retention destructions indexed by (run, participant), not by run alone

Revision ID: 0013
Revises: 0012

A retention run records each participant's audit entry on its destruction rows by run and
participant. With an index on the run alone, SQLite's planner searched that index (every row of the
run) for each participant, so a run of n participants took O(n^2); the composite index serves both.
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_retention_destructions_run_participant", "retention_destructions", ["run_id", "participant_id"])
    op.drop_index("ix_retention_destructions_run_id", table_name="retention_destructions")


def downgrade() -> None:
    op.create_index("ix_retention_destructions_run_id", "retention_destructions", ["run_id"])
    op.drop_index("ix_retention_destructions_run_participant", table_name="retention_destructions")
