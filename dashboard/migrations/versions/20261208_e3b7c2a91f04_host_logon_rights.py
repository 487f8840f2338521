"""card log-on at room PCs: people's host accounts, groups' hosts and administrator right

Revision ID: e3b7c2a91f04
Revises: c4e7a1d2b8f3
Create Date: 2026-12-08 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e3b7c2a91f04"
down_revision: str | None = "c4e7a1d2b8f3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("people") as batch:
        batch.add_column(sa.Column("host_accounts", sa.JSON(), nullable=False,
                                   server_default="[]"))
    with op.batch_alter_table("groups") as batch:
        batch.add_column(sa.Column("hosts", sa.JSON(), nullable=False, server_default="[]"))
        batch.add_column(sa.Column("host_admin", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("groups") as batch:
        batch.drop_column("host_admin")
        batch.drop_column("hosts")
    with op.batch_alter_table("people") as batch:
        batch.drop_column("host_accounts")
