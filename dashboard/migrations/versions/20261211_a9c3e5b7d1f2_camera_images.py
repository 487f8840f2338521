"""camera_images: the stills nodes upload, encrypted at rest (their hashes are in events)

Revision ID: a9c3e5b7d1f2
Revises: a9d4e6b2c7f1
Create Date: 2026-12-11 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from dashboard.models.types import UTCDateTime

revision: str = "a9c3e5b7d1f2"
down_revision: str | None = "a9d4e6b2c7f1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "camera_images",
        sa.Column("id", BIGINT, primary_key=True, autoincrement=True),
        sa.Column("still_id", sa.String(length=96), nullable=False),
        sa.Column("node", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("nonce", sa.LargeBinary(), nullable=True),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=True),
        sa.Column("purged_at", UTCDateTime(), nullable=True),
        sa.UniqueConstraint("still_id", name="uq_camera_images_still_id"),
    )
    op.create_index("ix_camera_images_received", "camera_images", ["received_at"])


def downgrade() -> None:
    op.drop_index("ix_camera_images_received", table_name="camera_images")
    op.drop_table("camera_images")
