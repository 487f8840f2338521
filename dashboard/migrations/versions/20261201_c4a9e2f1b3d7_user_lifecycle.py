"""auth: user lifecycle (temporary passwords that expire and must be replaced)

An admin's password reset gives the user a temporary password: ``password_expires_at`` ends it,
``must_change_password`` keeps the session on the change-password page until the user sets
their own.

Revision ID: c4a9e2f1b3d7
Revises: b7c1e0a4d2f9
Create Date: 2026-12-01 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from dashboard.models.types import UTCDateTime

revision: str = "c4a9e2f1b3d7"
down_revision: str | None = "b7c1e0a4d2f9"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("auth_users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("must_change_password", sa.Boolean(), nullable=False,
                      server_default=sa.false())
        )
        batch_op.add_column(sa.Column("password_expires_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("auth_users", schema=None) as batch_op:
        batch_op.drop_column("password_expires_at")
        batch_op.drop_column("must_change_password")
