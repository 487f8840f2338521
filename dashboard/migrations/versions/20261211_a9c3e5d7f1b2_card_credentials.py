"""cards that prove themselves: card credential type, verified-only doors, site card master keys,
the credential of each door access

``cards.credential``: "uid" (UID/IDm only, weak), "desfire" or "felica_lite_s" (enrolled with
a secroom key: it must prove it at every reader). ``doors.require_verified``: the door accepts
verified cards only. ``card_master_keys``: the site card master keys, each sealed under a key
derived from the dashboard's signing key (a database dump alone opens none); state active,
previous (still accepted during a changeover) or retired (its secret wiped).
``door_access.credential``: verified, weak or failed, as the node reported it.

Revision ID: a9c3e5d7f1b2
Revises: c5e7a9b1d3f4
Create Date: 2026-12-11 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from dashboard.models.types import UTCDateTime

revision: str = "a9c3e5d7f1b2"
down_revision: str | None = "c5e7a9b1d3f4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cards") as batch:
        batch.add_column(sa.Column("credential", sa.String(length=16), nullable=False,
                                   server_default="uid"))
        batch.add_column(sa.Column("key_id", sa.String(length=32), nullable=True))
    with op.batch_alter_table("doors") as batch:
        batch.add_column(sa.Column("require_verified", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
    with op.batch_alter_table("door_access") as batch:
        batch.add_column(sa.Column("credential", sa.String(length=16), nullable=True))
    op.create_table(
        "card_master_keys",
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("sealed", sa.String(length=128), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("retired_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("key_id"),
    )


def downgrade() -> None:
    op.drop_table("card_master_keys")
    with op.batch_alter_table("door_access") as batch:
        batch.drop_column("credential")
    with op.batch_alter_table("doors") as batch:
        batch.drop_column("require_verified")
    with op.batch_alter_table("cards") as batch:
        batch.drop_column("key_id")
        batch.drop_column("credential")
