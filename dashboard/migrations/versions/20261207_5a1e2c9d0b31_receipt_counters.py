"""nodes: counters of the signed acks and resend requests sent to each node

Revision ID: 5a1e2c9d0b31
Revises: c4a9e2f1b3d7
Create Date: 2026-12-07 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5a1e2c9d0b31"
down_revision: str | None = "c4a9e2f1b3d7"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("nodes") as batch:
        batch.add_column(sa.Column("ack_counter", sa.BigInteger(), nullable=False,
                                   server_default="0"))
        batch.add_column(sa.Column("resend_counter", sa.BigInteger(), nullable=False,
                                   server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("nodes") as batch:
        batch.drop_column("resend_counter")
        batch.drop_column("ack_counter")
