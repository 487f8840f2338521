"""card enrolments: blank cards personalised at a reader on a signed command

``card_enrolments``: one row per command (person, node, reader, the counter the node checks,
state requested -> sent -> waiting -> personalised / failed / timeout / refused / expired, and
the card the node personalised: UID or IDm, type, site key id).

Revision ID: b5f7b9d1e3a6
Revises: b4e6a8c0d2f5
Create Date: 2026-12-12 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from dashboard.models.types import UTCDateTime

revision: str = "b5f7b9d1e3a6"
down_revision: str | None = "b4e6a8c0d2f5"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "card_enrolments",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("person_id", sa.String(length=128), nullable=False),
        sa.Column("node", sa.String(length=64), nullable=False),
        sa.Column("reader", sa.String(length=128), nullable=False),
        sa.Column("label", sa.String(length=128), nullable=False),
        sa.Column("wait_s", sa.Integer(), nullable=False),
        sa.Column("counter", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("requested_by", sa.String(length=64), nullable=False),
        sa.Column("requested_at", UTCDateTime(), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("uid", sa.String(length=64), nullable=True),
        sa.Column("card_type", sa.String(length=16), nullable=True),
        sa.Column("key_id", sa.String(length=32), nullable=True),
        sa.Column("detail", sa.String(length=160), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("node", "counter", name="uq_card_enrolments_node_counter"),
    )
    op.create_index("ix_card_enrolments_state", "card_enrolments", ["state"])
    op.create_index("ix_card_enrolments_person", "card_enrolments",
                    ["person_id", "requested_at"])


def downgrade() -> None:
    op.drop_index("ix_card_enrolments_person", table_name="card_enrolments")
    op.drop_index("ix_card_enrolments_state", table_name="card_enrolments")
    op.drop_table("card_enrolments")
