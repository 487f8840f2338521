"""auth_users: an account's scope (the site it manages, or the client whose records it reads)

NULL in both keeps every existing account as it was (all sites, all clients).

Revision ID: a9d4e6b2c7f1
Revises: a9c3e5d7f1b2
Create Date: 2026-12-11 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a9d4e6b2c7f1"
down_revision: str | None = "a9c3e5d7f1b2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("auth_users") as batch:
        batch.add_column(sa.Column("site", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("client_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("auth_users") as batch:
        batch.drop_column("client_id")
        batch.drop_column("site")
