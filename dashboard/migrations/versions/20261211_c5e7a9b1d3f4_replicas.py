"""replicas: heartbeats, node ingest leases, leader terms, policy_versions.signed_by

Revision ID: c5e7a9b1d3f4
Revises: f2a7c4e9b1d3
Create Date: 2026-12-11 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from dashboard.models.types import UTCDateTime

revision: str = "c5e7a9b1d3f4"
down_revision: str | None = "f2a7c4e9b1d3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "replicas",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("seen_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_index("ix_replicas_seen_at", "replicas", ["seen_at"])
    op.create_table(
        "ingest_leases",
        sa.Column("node", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=64), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("epoch", BIGINT, nullable=False),
        sa.PrimaryKeyConstraint("node"),
    )
    op.create_table(
        "leader_terms",
        sa.Column("id", BIGINT, autoincrement=True, nullable=False),
        sa.Column("holder", sa.String(length=64), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_leader_terms_started_at", "leader_terms", ["started_at"])
    with op.batch_alter_table("policy_versions") as batch:
        batch.add_column(sa.Column("signed_by", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("policy_versions") as batch:
        batch.drop_column("signed_by")
    op.drop_index("ix_leader_terms_started_at", table_name="leader_terms")
    op.drop_table("leader_terms")
    op.drop_table("ingest_leases")
    op.drop_index("ix_replicas_seen_at", table_name="replicas")
    op.drop_table("replicas")
