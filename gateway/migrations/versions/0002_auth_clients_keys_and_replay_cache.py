"""auth clients keys and replay cache

Revision ID: 0002
Revises: 0001

Partner authentication: the client registry, disabled organisations, the client-assertion jti replay
cache, the gateway's access-token signing keys, and the revocation epoch.
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "auth_clients",
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("organisation", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("roles", sa.Text(), nullable=False),
        sa.Column("jwks", sa.Text(), nullable=True),
        sa.Column("jwks_uri", sa.String(length=500), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_reason", sa.String(length=200), nullable=True),
        sa.Column("demo", sa.Boolean(), nullable=False),
        sa.Column("certificate_bound", sa.Boolean(), nullable=False),
        sa.Column("rate_limit_per_minute", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("client_id", name=op.f("pk_auth_clients")),
    )
    with op.batch_alter_table("auth_clients", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_auth_clients_organisation"), ["organisation"], unique=False)

    op.create_table(
        "auth_organisation_status",
        sa.Column("organisation", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("organisation", name=op.f("pk_auth_organisation_status")),
    )
    op.create_table(
        "auth_assertion_jtis",
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("jti", sa.String(length=256), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("client_id", "jti", name=op.f("pk_auth_assertion_jtis")),
    )
    with op.batch_alter_table("auth_assertion_jtis", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_auth_assertion_jtis_expires_at"), ["expires_at"], unique=False)

    op.create_table(
        "auth_signing_keys",
        sa.Column("kid", sa.String(length=64), nullable=False),
        sa.Column("alg", sa.String(length=16), nullable=False),
        sa.Column("public_jwk", sa.Text(), nullable=False),
        sa.Column("private_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("kek_id", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("publish_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("kid", name=op.f("pk_auth_signing_keys")),
    )
    op.create_table(
        "auth_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auth_state")),
    )
    # The single revocation-epoch row, locked by key rotation and bumped by every revocation.
    op.bulk_insert(
        sa.table("auth_state", sa.column("id", sa.Integer), sa.column("epoch", sa.BigInteger)),
        [{"id": 1, "epoch": 0}],
    )


def downgrade() -> None:
    op.drop_table("auth_state")
    op.drop_table("auth_signing_keys")
    with op.batch_alter_table("auth_assertion_jtis", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_auth_assertion_jtis_expires_at"))
    op.drop_table("auth_assertion_jtis")
    op.drop_table("auth_organisation_status")
    with op.batch_alter_table("auth_clients", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_auth_clients_organisation"))
    op.drop_table("auth_clients")
