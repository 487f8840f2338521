"""database_backups: the dashboard's nightly backups of its own database

Revision ID: d8b3f0a6c2e1
Revises: e3b7c2a91f04
Create Date: 2026-12-09 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from dashboard.models.types import UTCDateTime

revision: str = "d8b3f0a6c2e1"
down_revision: str | None = "e3b7c2a91f04"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "database_backups",
        sa.Column("id", BIGINT, autoincrement=True, nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("result", sa.String(length=16), nullable=False),
        sa.Column("snapshot_id", sa.String(length=64), nullable=True),
        sa.Column("database_bytes", sa.BigInteger(), nullable=False),
        sa.Column("bytes_stored", sa.BigInteger(), nullable=False),
        sa.Column("repo_bytes", sa.BigInteger(), nullable=False),
        sa.Column("dump_s", sa.Float(), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("policy_key", sa.String(length=16), nullable=False),
        sa.Column("error", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_database_backups_started_at", "database_backups", ["started_at"])


def downgrade() -> None:
    op.drop_index("ix_database_backups_started_at", table_name="database_backups")
    op.drop_table("database_backups")
